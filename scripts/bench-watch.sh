#!/usr/bin/env bash
# Benchmarks of `tier watch` with the embedded server: landing to commit (files of 1,000 events
# renamed into the inbox one every 100 ms for SECONDS, p50/p95/max from the rename to the
# ledger's finished_at) with `--interval 0.2 --settle 0` and with the defaults; small files
# (FILES files of 1,000 events, one watcher with -j 2); one big file through watch against
# `tier load`; 1, 2 and 4 watchers on one inbox. Prints Markdown.
# Usage: scripts/bench-watch.sh [SECONDS] [FILES]   (defaults 60 and 400)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
files=${2:-400}
out=bench-out/watch
mkdir -p "$out"
scripts/ensure-postgres.sh
if [ -z "${TIER_BIN:-}" ]; then
  cargo build --release --quiet --bin tier
  TIER_BIN=$(pwd)/target/release/tier
fi
tier=$TIER_BIN
export TIER_HOME="$(pwd)/$out/home"
trap '"$tier" -q db stop >/dev/null 2>&1 || true' EXIT
"$tier" -q db start >/dev/null
admin=$("$tier" db url)
url=${admin/\/tier\?//bench?}
fresh() { psql "$admin" -Xqc "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"; }

landing=$((seconds * 10))
n=$((landing > files ? landing : files))
mkdir -p "$out/src"
for i in $(seq 1 "$n"); do
  [ -s "$out/src/$i.json" ] || "$tier" generate track_events --records 1000 --seed "$i" -o "$out/src/$i.json"
done
[ -s "$out/big.json" ] || "$tier" generate track_events --records 1000000 --seed 7 -o "$out/big.json"

# Landing to commit: rename one file every 100 ms, then read the lags off the ledger.
latency() {
  local label=$1; shift
  fresh
  rm -rf "$out/inbox" "$out/landed"
  mkdir -p "$out/inbox"
  "$tier" -q watch "$out/inbox" --database-url "$url" "$@" &
  local pid=$!
  for i in $(seq 1 "$landing"); do
    cp "$out/src/$i.json" "$out/inbox/.$i.tmp"
    mv "$out/inbox/.$i.tmp" "$out/inbox/events_$i.json"
    echo "$out/inbox/events_$i.json $(date +%s.%N)" >>"$out/landed"
    sleep 0.1
  done
  for _ in $(seq 1 600); do
    [ "$(psql "$url" -XAtc "SELECT count(*) FROM tier_loads")" -ge "$landing" ] && break
    sleep 0.1
  done
  kill -TERM "$pid"; wait "$pid" || true
  psql "$url" -XAtF' ' -c "SELECT source, extract(epoch FROM finished_at) FROM tier_loads" >"$out/committed"
  python3 - "$out/landed" "$out/committed" "$label" <<'EOF'
import sys
landed = {}
for line in open(sys.argv[1]):
    path, at = line.split()
    landed[path] = float(at)
lags = []
for line in open(sys.argv[2]):
    path, at = line.split()
    if path in landed:
        lags.append(float(at) - landed[path])
lags.sort()
pick = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
print(f"| landing to commit, {sys.argv[3]} | {len(lags)} files | p50 {pick(0.5):.2f} s | p95 {pick(0.95):.2f} s | max {lags[-1]:.2f} s |")
EOF
}

secs() { /usr/bin/time -f "%e" -o "$out/time" "$@" >/dev/null 2>"$out/stderr" || { cat "$out/stderr" >&2; exit 1; }; cat "$out/time"; }

echo "| measure | files | figure | | |"
echo "|---|---|---|---|---|"
latency "--interval 0.2 --settle 0" --interval 0.2 --settle 0
latency "defaults (--interval 1 --settle 1)"

# Small files: FILES files of 1,000 events, one watcher with -j 2.
fresh
rm -rf "$out/inbox"; mkdir -p "$out/inbox"
for i in $(seq 1 "$files"); do cp "$out/src/$i.json" "$out/inbox/events_$i.json"; done
t=$(secs "$tier" -q watch "$out/inbox" --database-url "$url" --once --settle 0 -j 2)
echo "| small files, one watcher -j 2 | $files | $(python3 -c "print(f'{$files/$t:.0f} files/s')") | $(python3 -c "print(f'{$files*1000/$t:,.0f} rows/s')") | $t s |"

# One big file: watch against load.
fresh
rm -rf "$out/inbox"; mkdir -p "$out/inbox"; cp "$out/big.json" "$out/inbox/events_big.json"
tw=$(secs "$tier" -q watch "$out/inbox" --database-url "$url" --once --settle 0)
fresh
tl=$(secs "$tier" -q load --progress never --database-url "$url" "$out/big.json")
echo "| 1,000,000 events: watch / load | 1 | $tw s / $tl s | $(python3 -c "print(f'{$tw/$tl:.2f} x')") | |"

# Scale-out: 1, 2 and 4 watchers (each -j 1) on one inbox of FILES files.
for w in 1 2 4; do
  fresh
  rm -rf "$out/inbox"; mkdir -p "$out/inbox"
  for i in $(seq 1 "$files"); do cp "$out/src/$i.json" "$out/inbox/events_$i.json"; done
  start=$(date +%s.%N)
  pids=()
  for _ in $(seq 1 "$w"); do
    "$tier" -q watch "$out/inbox" --database-url "$url" --once --settle 0 & pids+=($!)
  done
  wait "${pids[@]}"
  t=$(python3 -c "import time; print(f'{time.time() - $start:.2f}')")
  echo "| $w watcher(s) on one inbox | $files | $(python3 -c "print(f'{$files/$t:.0f} files/s')") | $t s | |"
done
