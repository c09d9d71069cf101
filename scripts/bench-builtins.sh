#!/usr/bin/env bash
# The built-ins' check and load figures of two binaries side by side: `tier check` and `tier load`
# (empty database of the embedded server) of 1M generated track events and 300k weather
# observations, and `wc -l` of the events as the reading floor. Runs alternate between the two
# binaries; each figure is the median of RUNS (default 3). Prints a Markdown table.
# Usage: TIER_BEFORE=/path/to/old/tier scripts/bench-builtins.sh [EVENTS] [WEATHER] [RUNS]
# TIER_BIN chooses the binary measured as "after" (default: the release build of this checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
w=${2:-300000}
runs=${3:-3}
out=bench-out
mkdir -p "$out"
scripts/ensure-postgres.sh
if [ -z "${TIER_BIN:-}" ]; then
  cargo build --release --quiet --bin tier
  TIER_BIN=$(pwd)/target/release/tier
fi
after=$TIER_BIN
before=${TIER_BEFORE:?TIER_BEFORE names the binary to compare with}

[ -s "$out/events-$n.json" ] || "$after" generate track_events --records "$n" --seed 1 -o "$out/events-$n.json"
[ -s "$out/weather-$w.json" ] || "$after" generate weather --records "$w" --seed 1 -o "$out/weather-$w.json"

secs() { /usr/bin/time -f "%e" -o "$out/time" "$@" >/dev/null 2>"$out/stderr" || { cat "$out/stderr" >&2; exit 1; }; cat "$out/time"; }
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

export TIER_HOME="$(pwd)/$out/home"
trap '"$after" -q db stop >/dev/null 2>&1 || true' EXIT
"$after" -q db start >/dev/null
admin=$("$after" db url)
url=${admin/\/tier\?//bench?}
fresh() { psql "$admin" -Xqc "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"; }

declare -A t
add() { t[$1]="${t[$1]:-} $2"; }
cat "$out/events-$n.json" "$out/weather-$w.json" >/dev/null
for _ in $(seq "$runs"); do
  add wc "$(secs wc -l "$out/events-$n.json")"
  for b in before after; do
    bin=${!b}
    add "check-events-$b" "$(secs "$bin" check --progress never "$out/events-$n.json")"
    add "check-weather-$b" "$(secs "$bin" check --progress never "$out/weather-$w.json")"
    fresh
    add "load-events-$b" "$(secs "$bin" load --progress never --database-url "$url" "$out/events-$n.json")"
    fresh
    add "load-weather-$b" "$(secs "$bin" load --progress never --database-url "$url" "$out/weather-$w.json")"
  done
done
m() { median ${t[$1]}; }
echo "| measure | before | after | change |"
echo "|---|---|---|---|"
row() {
  local b a
  b=$(m "$2-before"); a=$(m "$2-after")
  echo "| $1 | $b | $a | $(awk -v b="$b" -v a="$a" 'BEGIN { printf "%+.0f %%", (a / b - 1) * 100 }') |"
}
row "\`tier check\`, $n events" check-events
row "\`tier check\`, $w weather observations" check-weather
row "\`tier load\`, $n events, empty database" load-events
row "\`tier load\`, $w weather observations, empty database" load-weather
echo
echo "\`wc -l\` of the events: $(m wc) s (median); \`check\` of the events after: $(awk -v c="$(m check-events-after)" -v w="$(m wc)" 'BEGIN { printf "%.1f", c / w }') × wc."
