#!/usr/bin/env bash
# Benchmarks of tier on generated data: reading speed against `wc -l`, peak memory from 1M to 5M
# events, and the load against the server-side floor (`psql \copy` of the equivalent CSV into an
# un-indexed table). Prints a Markdown table. Usage: scripts/bench.sh [EVENTS] (default 1000000).
# TIER_BIN chooses the binary (default: the release build of this checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
big=$((n * 5))
out=bench-out
mkdir -p "$out"
scripts/ensure-postgres.sh
if [ -z "${TIER_BIN:-}" ]; then
  cargo build --release --quiet --bin tier
  TIER_BIN=$(pwd)/target/release/tier
fi
tier=$TIER_BIN

gen() { [ -s "$2" ] || "$tier" generate track_events --records "$1" --seed 1 $3 -o "$2"; }
gen "$n" "$out/events-$n.json" ""
gen "$n" "$out/events-$n.csv" "--csv"
gen "$big" "$out/events-$big.json" ""

secs() { /usr/bin/time -f "%e %M" -o "$out/time" "$@" >/dev/null 2>"$out/stderr" || { cat "$out/stderr" >&2; exit 1; }; cut -d' ' -f1 "$out/time"; }
rss_mb() { echo $(( $(cut -d' ' -f2 "$out/time") / 1024 )); }

cat "$out/events-$n.json" >/dev/null  # warm the page cache
wc=$(secs wc -l "$out/events-$n.json")
check=$(secs "$tier" check --progress never "$out/events-$n.json"); check_rss=$(rss_mb)
check_big=$(secs "$tier" check --progress never "$out/events-$big.json"); check_big_rss=$(rss_mb)

export TIER_HOME="$(pwd)/$out/home"
# The benchmark's own server, stopped when the script ends however it ends.
trap '"$tier" -q db stop >/dev/null 2>&1 || true' EXIT
"$tier" -q db start >/dev/null
admin=$("$tier" db url)
url=${admin/\/tier\?//bench?}
fresh() { psql "$admin" -Xqc "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"; }

fresh
psql "$url" -Xqc "CREATE TABLE floor (anonymous_id text, event_name text, original_timestamp_time timestamptz,
  received_time timestamptz, sent_time timestamptz, context_timezone text, context_os_name text,
  context_os_version text, context_device_type text, context_device_model text,
  context_device_manufacturer text, context_device_id text, context_app_name text,
  context_app_version text, context_app_build text, properties_rating smallint)"
floor=$(secs psql "$url" -Xqc "\\copy floor from '$out/events-$n.csv' csv header")

fresh
load=$(secs "$tier" load --progress never --database-url "$url" "$out/events-$n.json"); load_rss=$(rss_mb)
rerun=$(secs "$tier" load --progress never --database-url "$url" "$out/events-$n.json")
fresh
load_big=$(secs "$tier" load --progress never --database-url "$url" "$out/events-$big.json"); load_big_rss=$(rss_mb)
fresh
"$tier" generate track_events --records "$n" --seed 2 --defect-rate 0.05 -o "$out/defects.json"
defects=$(secs "$tier" load --progress never --database-url "$url" "$out/defects.json")
incremental=$(secs "$tier" load --progress never --database-url "$url" "$out/events-$n.json")

# Four files of one dataset into one table, 1, 2 and 4 at once.
mkdir -p "$out/jobs"
for i in 0 1 2 3; do
  f="$out/jobs/track_events_$i.json"
  [ -s "$f" ] || "$tier" generate track_events --records $((n / 4)) --seed $((100 + i)) -o "$f"
done
jobs_load() { fresh; secs "$tier" load --progress never --database-url "$url" -j "$1" "$out/jobs"; }
jobs_1=$(jobs_load 1)
jobs_2=$(jobs_load 2)
jobs_4=$(jobs_load 4)
# The same four files into four tables: four definitions of the same columns (ev_0 … ev_3),
# each file's keys under the prefix of its own.
mkdir -p "$out/tables" "$out/defs"
for i in 0 1 2 3; do
  f="$out/tables/ev_$i.json"
  [ -s "$f" ] || sed "s/\"segment_tracks\./\"ev_$i./g" "$out/jobs/track_events_$i.json" > "$f"
  "$tier" schema track_events --definition |
    sed -e "0,/^name = .*/s//name = \"ev_$i\"/" -e "s/^prefix = .*/prefix = \"ev_$i.\"/" -e "/^file_pattern/d" \
    > "$out/defs/ev_$i.toml"
done
tables_load() { fresh; secs "$tier" load --progress never --database-url "$url" --datasets "$out/defs" -j "$1" "$out/tables"; }
tables_1=$(tables_load 1)
tables_2=$(tables_load 2)
tables_4=$(tables_load 4)

# JSON → lake (Parquet, zstd), side by side with DuckDB doing the same job on the NDJSON copy.
rm -rf "$out/lake"
lake=$(secs "$tier" load --progress never --lake "$out/lake" "$out/events-$n.json"); lake_rss=$(rss_mb)
lake_mb=$(du -sm "$out/lake" | cut -f1)
[ -s "$out/events-$n.ndjson" ] || sed -e '1s/^\[//' -e 's/,$//' "$out/events-$n.json" > "$out/events-$n.ndjson"
[ -x "$out/venv/bin/python" ] || { python3 -m venv "$out/venv" && "$out/venv/bin/pip" install -q duckdb pyarrow polars; }
"$out/venv/bin/pip" install -q --force-reinstall --no-deps ./tier-py
rm -f "$out/duck.parquet"
duck=$(secs "$out/venv/bin/python" -c "import duckdb; duckdb.sql(\"COPY (SELECT * FROM read_json('$out/events-$n.ndjson')) TO '$out/duck.parquet' (FORMAT parquet, COMPRESSION zstd)\")"); duck_rss=$(rss_mb)
duck_mb=$(du -sm "$out/duck.parquet" | cut -f1)

# 1M events → a pyarrow.Table: tier.read beside pyarrow.json and polars on the NDJSON copy.
py() { secs "$out/venv/bin/python" -c "$1"; }
arrow=$(py "import pyarrow, tier; assert pyarrow.table(tier.read('$out/events-$n.json')).num_rows == $n"); arrow_rss=$(rss_mb)
pa_json=$(py "import pyarrow.json as j; assert j.read_json('$out/events-$n.ndjson').num_rows == $n"); pa_rss=$(rss_mb)
pl_json=$(py "import polars as pl; assert pl.read_ndjson('$out/events-$n.ndjson').height == $n"); pl_rss=$(rss_mb)

size=$(du -m "$out/events-$n.json" | cut -f1)
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
echo "Machine: $(nproc) cores, $(free -g | awk '/^Mem/ {print $2}') GiB."
echo
cat <<EOT
| measure ($n events, $size MB) | seconds | peak RSS | ratio |
|---|---|---|---|
| \`wc -l\` | $wc | | 1 |
| \`tier check\` | $check | $check_rss MB | $(ratio "$check" "$wc") × wc |
| \`tier check\`, $big events | $check_big | $check_big_rss MB | |
| \`psql \\copy\` CSV, un-indexed table (floor) | $floor | | 1 |
| \`tier load\`, empty database | $load | $load_rss MB | $(ratio "$load" "$floor") × floor |
| \`tier load\` again (skipped by SHA-256) | $rerun | | |
| \`tier load\`, $big events, empty database | $load_big | $load_big_rss MB | |
| \`tier load\`, 5 % defects, empty database | $defects | | |
| \`tier load\` into a table already holding $n rows | $incremental | | |
| \`tier load -j 1\`, 4 files of $((n / 4)) events into one table | $jobs_1 | | 1 |
| \`tier load -j 2\`, the same | $jobs_2 | | $(ratio "$jobs_2" "$jobs_1") × -j 1 |
| \`tier load -j 4\`, the same | $jobs_4 | | $(ratio "$jobs_4" "$jobs_1") × -j 1 |
| \`tier load -j 1\`, the 4 files into 4 tables | $tables_1 | | 1 |
| \`tier load -j 2\`, the same | $tables_2 | | $(ratio "$tables_2" "$tables_1") × -j 1 |
| \`tier load -j 4\`, the same | $tables_4 | | $(ratio "$tables_4" "$tables_1") × -j 1 |
| \`tier load --lake\` (Parquet, zstd; $lake_mb MB) | $lake | $lake_rss MB | $(ratio "$lake" "$duck") × DuckDB |
| DuckDB \`COPY (SELECT * FROM read_json(…)) TO … (FORMAT parquet, COMPRESSION zstd)\` on the NDJSON copy ($duck_mb MB) | $duck | $duck_rss MB | 1 |
| Python \`pyarrow.table(tier.read(…))\` | $arrow | $arrow_rss MB | $(ratio "$arrow" "$pa_json") × pyarrow.json |
| Python \`pyarrow.json.read_json\` on the NDJSON copy | $pa_json | $pa_rss MB | 1 |
| Python \`polars.read_ndjson\` on the NDJSON copy | $pl_json | $pl_rss MB | $(ratio "$pl_json" "$pa_json") × pyarrow.json |
EOT
