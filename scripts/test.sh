#!/usr/bin/env bash
# `npm test`: every vitest project, arranged for CI's time budget on 2 cores (vitest.config.ts has
# the projects). Side by side:
#  - unit (pure code, no engine), then tools — these start throwaway containers, so they wait until
#    the engine test and the image step are over;
#  - the engine test (it stops and restarts dockerd, every container with it), the lab images once
#    (seconds when built; a fresh machine builds them here, not three times side by side), then:
#      · the `fabric` files (lab, runbooks, lifecycle, plan: their own single-HAProxy lab), and beside
#        them scenarios/prepare.ts (the scenario lab up and provisioned), then the scenario lab's
#        scale-users, load and watch files;
#      · then failover and the scenario catalogue, without the fabric beside them: their checks race
#        real daemons and measure throughput, lag and times.
# Reports come in that order (the side-by-side ones from out/test-*.log); the exit status is the
# first failing part's.
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

# the scenario lab's files that share the machine well (scale-users, load, watch); failover's and
# the catalogue's checks race real daemons and measure times, so they run after, without the fabric
lab_files=$(npx vitest list --project lab --filesOnly 2>/dev/null | sed -n 's#^\[lab\] ##p')
beside=$(grep -v -e 'failover\.test\.ts$' -e 'scenarios\.test\.ts$' <<<"$lab_files")
after=$(grep -e 'failover\.test\.ts$' -e 'scenarios\.test\.ts$' <<<"$lab_files")
[[ -n $beside && -n $after ]] || {
  echo "npm test: \`vitest list --project lab --filesOnly\` named: ${lab_files:-no file}" >&2
  exit 1
}
(
  npx tsx scenarios/prepare.ts ||
    echo "npm test: scenarios/prepare.ts failed; the lab files bring the scenario lab up themselves"
  # the scenario lab stays up for the run below (its teardown comes after that one)
  # shellcheck disable=SC2086
  WHARF_KEEP_LAB=1 npx vitest run --project lab $beside
) >out/test-scenario-lab.log 2>&1 &
scen=$!
npx vitest run --project fabric
fabric=$?
wait "$scen"
scen_rc=$?
echo
echo "==== the scenario lab's files run beside fabric (out/test-scenario-lab.log) ===="
cat out/test-scenario-lab.log

echo
echo "==== failover, then the scenario catalogue ===="
# shellcheck disable=SC2086
npx vitest run --project lab $after
after_rc=$?

wait "$side"
side_rc=$?
echo
echo "==== unit, then tools (ran beside the engine and lab files; out/test-unit-tools.log) ===="
cat out/test-unit-tools.log

for rc in "$engine" "$fabric" "$scen_rc" "$after_rc" "$side_rc"; do
  if [[ $rc -ne 0 ]]; then
    echo "npm test: engine exit $engine, fabric exit $fabric, scenario lab files beside it exit $scen_rc, failover + catalogue exit $after_rc, unit + tools exit $side_rc" >&2
    exit "$rc"
  fi
done
