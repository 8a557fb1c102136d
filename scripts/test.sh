#!/usr/bin/env bash
# `npm test`: every vitest project, arranged for CI's time budget on 2 cores.
#  1. test/lab/engine.test.ts alone: it stops and restarts dockerd, so nothing may use the engine
#     meanwhile (no lab is up yet, no throwaway container);
#  2. the lab files (one at a time, in vitest.config.ts's LAB_ORDER: the files that build bare
#     nodes first, the scenario lab's timing-sensitive files last) and, beside them in a second
#     vitest process, unit + tools: these no longer wait ~12 minutes for the lab. Their output goes
#     to out/test-unit-tools.log and is printed once both are done (no interleaved reports).
# Exit status: the engine test's when it failed, else the worse of the two side-by-side runs.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p out
npx vitest run --project engine || exit $?
npx vitest run --project unit --project tools >out/test-unit-tools.log 2>&1 &
side=$!
npx vitest run --project lab
lab=$?
wait "$side"
side_rc=$?
echo
echo "==== unit + tools (ran beside the lab files; out/test-unit-tools.log) ===="
cat out/test-unit-tools.log
[[ $lab -eq 0 && $side_rc -eq 0 ]] && exit 0
echo "npm test: lab exit $lab, unit + tools exit $side_rc" >&2
exit $((lab != 0 ? lab : side_rc))
