#!/usr/bin/env bash
# Keyed loads against their `psql \copy` floors, side by side in one run (tier and the floor
# alternate, median of 3), printed as a Markdown table:
#   - weather into an empty table against `\copy` of the same rows as CSV into an un-indexed table;
#   - weather into a table already holding 1M, 3M and 10M rows (the merge path) against `\copy`
#     of the same CSV into a table of as many rows with the same unique index.
# Usage: scripts/bench-keyed.sh [ROWS] [SIZES] (default 300000 and "1000000 3000000 10000000").
# TIER_BIN chooses the binary (default: the release build of this checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-300000}
sizes=${2:-"1000000 3000000 10000000"}
out=bench-out
mkdir -p "$out"
scripts/ensure-postgres.sh
if [ -z "${TIER_BIN:-}" ]; then
  cargo build --release --quiet --bin tier
  TIER_BIN=$(pwd)/target/release/tier
fi
tier=$TIER_BIN

json="$out/weather-$rows.json"
csv="$out/weather-$rows.csv"
[ -s "$json" ] || "$tier" generate weather --records "$rows" --seed 1 -o "$json"
[ -s "$csv" ] || "$tier" generate weather --records "$rows" --seed 1 --csv -o "$csv"

export TIER_HOME="$(pwd)/$out/home"
chmod 755 "$out" "$(pwd)"
"$tier" -q db start >/dev/null
admin=$("$tier" db url)
url=${admin/\/tier\?//bench?}
q() { PGOPTIONS="-c client_min_messages=warning" psql "$url" -Xqc "$1" >/dev/null; }
fresh() { psql "$admin" -Xqc "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"; }
secs() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$out/stderr" || { cat "$out/stderr" >&2; exit 1; }
  t1=$(date +%s.%N)
  python3 -c "print(f'{$t1 - $t0:.2f}')"
}
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
floor_cols="city text, date_time timestamptz, currently_temperature double precision,
  currently_apparenttemperature double precision, currently_humidity double precision,
  currently_precipprobability double precision, currently_precipintensity double precision,
  currently_visibility double precision, currently_windspeed double precision,
  currently_preciptype text"
floor_cols_names="city, date_time, currently_temperature, currently_apparenttemperature,
  currently_humidity, currently_precipprobability, currently_precipintensity, currently_visibility,
  currently_windspeed, currently_preciptype"
load() { "$tier" load --progress never --dataset weather --database-url "$url" "$json"; }
copy_floor() { psql "$url" -Xqc "\\copy floor from '$csv' csv header"; }

echo "| measure (weather, $rows rows) | tier | \`\\copy\` floor | ratio |"
echo "|---|---|---|---|"

# Into an empty table (created by a first load, then emptied). The second floor holds the same
# data as tier's table: the CSV carries each row's fields outside the definition (the generator's
# `currently_ozone`) as a `jsonb` column, as tier keeps them in `_extra`.
fresh
load >/dev/null
full="$out/weather-$rows-extra.csv"
[ -s "$full" ] || psql "$url" -Xqc "\\copy (SELECT ${floor_cols_names//$'\n'/ }, _extra FROM weather ORDER BY _record_index) TO '$full' csv header"
copy_full() { psql "$url" -Xqc "\\copy floor_full from '$full' csv header"; }
t=(); f=(); g=()
for _ in 1 2 3; do
  q "TRUNCATE weather, weather_rejects, tier_loads"
  q "DROP TABLE IF EXISTS floor"
  q "CREATE TABLE floor ($floor_cols)"
  q "DROP TABLE IF EXISTS floor_full"
  q "CREATE TABLE floor_full ($floor_cols, _extra jsonb)"
  t+=("$(secs load)")
  f+=("$(secs copy_floor)")
  g+=("$(secs copy_full)")
done
echo "| into an empty table (floor un-indexed) | $(median "${t[@]}") | $(median "${f[@]}") | $(ratio "$(median "${t[@]}")" "$(median "${f[@]}")") × |"
echo "| into an empty table (floor un-indexed, with the rows' other fields as \`jsonb\`) | $(median "${t[@]}") | $(median "${g[@]}") | $(ratio "$(median "${t[@]}")" "$(median "${g[@]}")") × |"

# Into populated tables: the rows already there are of the years before the file's.
for size in $sizes; do
  fresh
  load >/dev/null  # creates the tables
  q "TRUNCATE weather, weather_rejects, tier_loads"
  q "CREATE TABLE floor ($floor_cols)"
  q "INSERT INTO weather (city, date_time, currently_temperature, _load_id, _record_index, _row_hash)
     SELECT 'City ' || (g % 97), timestamptz '2019-01-01' - g * interval '1 minute', (g % 50)::float8,
            0, g, decode(md5(g::text), 'hex') FROM generate_series(1, $size) g"
  q "INSERT INTO floor (city, date_time, currently_temperature)
     SELECT city, date_time, currently_temperature FROM weather"
  q "CREATE UNIQUE INDEX floor_key ON floor (date_time, city)"
  q "VACUUM ANALYZE weather"
  q "VACUUM ANALYZE floor"
  t=(); f=()
  for _ in 1 2 3; do
    t+=("$(secs load)")
    f+=("$(secs copy_floor)")
    q "DELETE FROM weather WHERE _load_id <> 0"
    q "DELETE FROM tier_loads"
    q "DELETE FROM floor WHERE date_time >= '2019-01-01'"
    q "VACUUM weather"
    q "VACUUM floor"
  done
  echo "| into a table of $size rows (floor with the same unique index) | $(median "${t[@]}") | $(median "${f[@]}") | $(ratio "$(median "${t[@]}")" "$(median "${f[@]}")") × |"
done
"$tier" -q db stop >/dev/null 2>&1 || true
