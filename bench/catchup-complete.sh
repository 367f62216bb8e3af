#!/bin/bash
# Does a following catch-up complete? Starts BIN on the catch-up benchmark's 4 x 128 MiB files
# (bench/out/catchup-134217728/, made by `node bench/run.mjs follow --only catchup`) with
# --from start and a fresh state, polls the output's size for up to 15 s, and says per run
# whether every byte arrived and how long it took. Found top-down's stall (docs/performance.md,
# 2026-12-07).
#
#   bash bench/catchup-complete.sh BIN ENGINE RUNS     e.g. bash bench/catchup-complete.sh bin/logmerge top-down 8
set -u
BIN=$1; ENG=$2; RUNS=$3
D=$(dirname "$0")/out/catchup-134217728
TOTAL=$(cat "$D"/app.log "$D"/syslog.log "$D"/nginx.log "$D"/json.log | wc -c)
OUT=$(mktemp -d)/out.log
for i in $(seq "$RUNS"); do
  rm -f "$OUT" "$(dirname "$OUT")/.out.log.logmerge-state.json"
  "$BIN" "$D"/app.log "$D"/syslog.log "$D"/nginx.log "$D"/json.log -o "$OUT" --engine "$ENG" --from start 2>/dev/null &
  pid=$!
  t0=$(date +%s.%N); ok=no
  for _ in $(seq 150); do
    [ "$(stat -c %s "$OUT" 2>/dev/null || echo 0)" = "$TOTAL" ] && { ok=yes; break; }
    sleep 0.1
  done
  echo "$ENG run $i: complete=$ok size=$(stat -c %s "$OUT" 2>/dev/null || echo 0) of $TOTAL, $(echo "$(date +%s.%N) - $t0" | bc) s"
  kill -TERM $pid; wait $pid 2>/dev/null
done
rm -rf "$(dirname "$OUT")"
