#!/usr/bin/env bash
# The long fuzz campaign (issue 16): every libFuzzer target, one at a time, for a budget of CPU
# seconds per target, seeded as scripts/fuzz.sh seeds (scripts/fuzz-common.sh), at nice 19 so that
# it only takes idle CPU. Resumable: each run appends one record to the results file, a target's
# CPU time is the sum of its records (over every commit), and a rerun continues each target that
# has less than the budget, from its working corpus build-campaign/corpus/<target>/.
#   scripts/fuzz-campaign.sh [CPU seconds per target (3600)] [targets...]
#   nohup scripts/fuzz-campaign.sh >build-campaign/campaign.log 2>&1 &
# Environment: LAV2_CAMPAIGN_RESULTS (docs/fuzz_campaign.tsv); LAV2_CAMPAIGN_CHUNK, the CPU seconds
# of one run (900), so that a campaign stopped by force loses at most one run's record.
#
# CPU time, not wall time: libFuzzer's -max_total_time counts wall time, which on a shared machine
# says little about the work done. This script reads the fuzzer's utime + stime from
# /proc/<pid>/stat every 2 s and sends SIGINT when the run's budget is spent; libFuzzer then prints
# its final statistics (-print_final_stats=1) and exits with status 72.
#
# Record (tab-separated): date (UTC), target, commit the fuzzers were built from, CPU seconds,
# executions, cov and ft (libFuzzer's last status line: edges covered, features), corpus units,
# new units (stat::new_units_added), findings ("-" or the artifacts, kept in build-campaign/findings/),
# end (budget: stopped by this script; stopped: the campaign itself was stopped; crash/exit N).
# A target whose run ends in a finding is not run again in this invocation; a rerun (after the fix)
# continues it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/fuzz-common.sh
budget=${1:-3600}
shift || true
targets=("$@")
((${#targets[@]})) || targets=("${fuzz_all_targets[@]}")
chunk=${LAV2_CAMPAIGN_CHUNK:-900}
results=${LAV2_CAMPAIGN_RESULTS:-docs/fuzz_campaign.tsv}
out=build-campaign
hz=$(getconf CLK_TCK)

renice -n 19 -p $$ >/dev/null
mkdir -p $out/findings
exec 9>$out/campaign.lock
flock -n 9 || { echo "campaign: another campaign holds $out/campaign.lock" >&2; exit 1; }
[[ -s $results ]] || printf 'date\ttarget\tcommit\tcpu_s\texecutions\tcov\tft\tcorpus\tnew_units\tfindings\tend\n' >"$results"

spent() {  # spent <target>: CPU seconds recorded for the target
  awk -F'\t' -v t="$1" 'NR > 1 && $2 == t { s += $4 } END { printf "%d", s }' "$results"
}
todo=()
for t in "${targets[@]}"; do (($(spent "$t") < budget)) && todo+=("$t"); done
((${#todo[@]})) || { echo "campaign: every target has $budget CPU-s recorded in $results"; exit 0; }

fuzz_build $out "${todo[@]}"
fuzz_seed $out
commit=$(git rev-parse --short=12 HEAD)
git diff --quiet HEAD -- include cli tests/fuzz CMakeLists.txt cmake || commit+="-dirty"

cpu_of() {  # cpu_of <pid>: utime + stime in clock ticks, empty once the process is gone or a zombie
  local stat rest
  read -r stat <"/proc/$1/stat" 2>/dev/null || return 0
  rest=${stat##*) }  # the fields after "(comm)", which may hold spaces: state is field 3
  set -- $rest
  [[ $1 == Z ]] || echo $((${12} + ${13}))
}

pid="" stopping=""
stop() {  # the campaign itself is stopped: interrupt the fuzzer, record its run, then exit
  stopping=1
  [[ -n $pid ]] && kill -INT "$pid" 2>/dev/null || true
}
trap stop INT TERM HUP

run() {  # run <target> <CPU seconds>: one run; appends its record; fails on a finding
  local t=$1 limit=$2 log args ticks=0 now end=exit rc=0 execs new cov ft corp found=() f
  log=$out/logs/$t-$(date -u +%Y%m%dT%H%M%S).log
  mapfile -t args < <(fuzz_args $out "$t")
  "$out/fuzz/fuzz_$t" "${args[@]}" >"$log" 2>&1 &
  pid=$!
  while now=$(cpu_of "$pid") && [[ -n $now ]]; do
    ticks=$now
    if ((ticks >= limit * hz)) || [[ -n $stopping ]]; then
      [[ -n $stopping ]] && end=stopped || end=budget
      kill -INT "$pid" 2>/dev/null || true
      break
    fi
    sleep 2
  done
  wait "$pid" || rc=$?
  pid=""
  execs=$(awk '/^stat::number_of_executed_units:/ { print $2 }' "$log")
  new=$(awk '/^stat::new_units_added:/ { print $2 }' "$log")
  read -r cov ft corp < <(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1 | awk '{ print $2, $4, $6 }') || true
  while read -r f; do
    cp "$f" $out/findings/ && found+=("$(basename "$f")")
  done < <(grep -oE 'Test unit written to \S+' "$log" | awk '{ print $5 }')
  if ((${#found[@]})); then
    end=crash
  elif [[ $end == exit ]] && ((rc != 0)); then
    end="exit $rc"
  fi
  found_list=$(IFS=,; echo "${found[*]:--}")
  printf '%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$commit" $((ticks / hz)) \
    "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${new:-?}" "$found_list" "$end" >>"$results"
  echo "campaign: $t: $((ticks / hz)) CPU-s, ${execs:-?} executions, cov ${cov:-?} ft ${ft:-?}, end $end ($log)"
  [[ $end == budget || $end == stopped ]]
}

for t in "${todo[@]}"; do
  while [[ -z $stopping ]] && (($(spent "$t") < budget)); do
    left=$((budget - $(spent "$t")))
    run "$t" $((left < chunk ? left : chunk)) || break
  done
  [[ -n $stopping ]] && break
done
echo "campaign: done; totals in $results"
