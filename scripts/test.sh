#!/usr/bin/env bash
# `npm test`: every vitest project, arranged for CI's time budget on 2 cores (vitest.config.ts has
# the projects). Side by side:
#  - unit (pure code, no engine), then tools — these start throwaway containers, so they wait until
#    the engine test and the image step are over;
#  - the engine test (it stops and restarts dockerd, every container with it), the lab images once
#    (seconds when built; a fresh machine builds them here, not three times side by side), then:
#      · the `fabric` files (lab, runbooks, lifecycle, plan: their own single-HAProxy lab), and beside
#        them scenarios/prepare.ts (the scenario lab up and provisioned), then the scenario lab's
#        other files (scale-users, load, failover, watch);
#      · then, once all of that and unit + tools are over, the scenario catalogue alone
#        (test/lab/scenarios.test.ts: its checks measure throughput, lag and times).
# Reports are printed in that order (the side-by-side ones from out/test-*.log); the exit status is
# the first failing part's.
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
scen=
trap 'kill "$side" ${scen:-} 2>/dev/null; rm -f "$engine_done"' EXIT

npx vitest run --project engine
engine=$?
npx tsx scenarios/prepare.ts --images || exit $?
touch "$engine_done"

scenario_lab_files=$(npx vitest list --project lab --filesOnly 2>/dev/null | sed -n 's#^\[lab\] ##p' | grep -v 'scenarios\.test\.ts$')
[[ -n $scenario_lab_files ]] || {
  echo "npm test: \`vitest list --project lab --filesOnly\` named no file" >&2
  exit 1
}
(
  npx tsx scenarios/prepare.ts ||
    echo "npm test: scenarios/prepare.ts failed; the lab files bring the scenario lab up themselves"
  # the scenario lab stays up for the catalogue run below (its teardown comes after that)
  # shellcheck disable=SC2086
  WHARF_KEEP_LAB=1 npx vitest run --project lab $scenario_lab_files
) >out/test-scenario-lab.log 2>&1 &
scen=$!
npx vitest run --project fabric
fabric=$?
wait "$scen"
scen_rc=$?
echo
echo "==== the scenario lab's files (ran beside fabric; out/test-scenario-lab.log) ===="
cat out/test-scenario-lab.log
wait "$side"
side_rc=$?
echo
echo "==== unit, then tools (ran beside the engine and lab files; out/test-unit-tools.log) ===="
cat out/test-unit-tools.log

echo
echo "==== the scenario catalogue, alone ===="
npx vitest run --project lab test/lab/scenarios.test.ts
scenarios=$?

for rc in "$engine" "$fabric" "$scen_rc" "$side_rc" "$scenarios"; do
  if [[ $rc -ne 0 ]]; then
    echo "npm test: engine exit $engine, fabric exit $fabric, scenario lab files exit $scen_rc, unit + tools exit $side_rc, scenarios exit $scenarios" >&2
    exit "$rc"
  fi
done
