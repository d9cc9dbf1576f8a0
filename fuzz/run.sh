#!/usr/bin/env bash
# Build and run switchyard's fuzz targets, one after the other.
#
#   fuzz/run.sh                      # every target, 10M runs or 8 min each
#   fuzz/run.sh inbox_item config    # only these
#   RUNS=100000 MAX_TIME=60 fuzz/run.sh chat_command
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
# One process per target (no -jobs/-workers: with -jobs libFuzzer forks and
# writes fuzz-N.log instead). Logs go to fuzz/logs/<target>.log; crashes to fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fuzz-target}"
RUNS="${RUNS:-10000000}"
MAX_TIME="${MAX_TIME:-480}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
nice -n 19 cargo +nightly fuzz build -O
mkdir -p logs
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t (runs=$RUNS, max_total_time=${MAX_TIME}s)"
  rc=0
  nice -n 19 cargo +nightly fuzz run "$t" -O -- \
    -runs="$RUNS" -max_total_time="$MAX_TIME" -max_len=65536 \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    >"logs/$t.log" 2>&1 || rc=$?
  grep -E '^#[0-9]+ +DONE|^Done [0-9]+ runs|stat::number_of_executed_units|stat::average_exec_per_sec' "logs/$t.log" || true
  if [ "$rc" -ne 0 ]; then
    echo "!! $t exited $rc: see logs/$t.log and artifacts/$t/"
  fi
done
