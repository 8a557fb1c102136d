#!/usr/bin/env bash
# `npm test`: every vitest project, arranged for CI's time budget on 2 cores.
#  1. unit, then test/lab/engine.test.ts alone: it stops and restarts dockerd, so nothing else may
#     use the engine meanwhile (and no lab is up yet that the restart would stop);
#  2. tools (throwaway containers) beside the lab files (one lab file at a time, one shared lab):
#     two vitest processes, so the tools tests no longer wait for ~10 minutes of lab tests.
# Exit status: the first failing phase's, else the worse of the two side-by-side runs.
set -uo pipefail
cd "$(dirname "$0")/.."
npx vitest run --project unit --project engine || exit $?
npx vitest run --project tools &
tools=$!
npx vitest run --project lab
lab=$?
wait "$tools"
tools_rc=$?
[[ $lab -eq 0 && $tools_rc -eq 0 ]] && exit 0
echo "npm test: lab exit $lab, tools exit $tools_rc" >&2
exit $((lab != 0 ? lab : tools_rc))
