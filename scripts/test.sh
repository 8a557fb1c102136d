#!/usr/bin/env bash
# `npm test`: every vitest project, arranged for CI's time budget on 2 cores. Two vitest processes:
#  - the engine test, then the lab files (one at a time, in vitest.config.ts's LAB_ORDER: the files
#    that build bare nodes and provision first, the scenario lab's timing-sensitive files last);
#  - beside them: unit (pure code, no engine), then tools — these start throwaway containers, so
#    they wait until the engine test (it stops and restarts dockerd, every container with it) is
#    over. Their output goes to out/test-unit-tools.log and is printed after the lab's report.
# Exit status: the first non-zero of engine, lab, unit + tools.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p out
engine_done=$(mktemp -u "${TMPDIR:-/tmp}/wharf-engine-done.XXXXXX")
(
  npx vitest run --project unit
  unit=$?
  while [[ ! -e $engine_done ]]; do sleep 1; done
  npx vitest run --project tools
  tools=$?
  exit $((unit != 0 ? unit : tools))
) >out/test-unit-tools.log 2>&1 &
side=$!
trap 'kill "$side" 2>/dev/null; rm -f "$engine_done"' EXIT
npx vitest run --project engine
engine=$?
touch "$engine_done"
npx vitest run --project lab
lab=$?
wait "$side"
side_rc=$?
echo
echo "==== unit, then tools (ran beside the engine and lab files; out/test-unit-tools.log) ===="
cat out/test-unit-tools.log
for rc in "$engine" "$lab" "$side_rc"; do
  if [[ $rc -ne 0 ]]; then
    echo "npm test: engine exit $engine, lab exit $lab, unit + tools exit $side_rc" >&2
    exit "$rc"
  fi
done
