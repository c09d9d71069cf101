#!/usr/bin/env bash
# The Iceberg lake's figures: 1M events JSON → lake against DuckDB's partitioned Parquet COPY of
# the same events (alternating runs, median of 3), and the cost of a commit per file (200 files
# of 1,000 events, one at a time, with the catalog of files and with a SQL catalog in
# PostgreSQL). Prints a Markdown table. Usage: scripts/bench-iceberg.sh [EVENTS] [FILES].
# TIER_BIN chooses the binary; TIER_BEFORE a second binary measured beside it (an earlier build).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
files=${2:-200}
out=bench-out
mkdir -p "$out"
scripts/ensure-postgres.sh
if [ -z "${TIER_BIN:-}" ]; then
  cargo build --release --quiet --bin tier
  TIER_BIN=$(pwd)/target/release/tier
fi
tier=$TIER_BIN
before=${TIER_BEFORE:-}

[ -s "$out/events-$n.json" ] || "$tier" generate track_events --records "$n" --seed 1 -o "$out/events-$n.json"
[ -s "$out/events-$n.ndjson" ] || sed -e '1s/^\[//' -e 's/,$//' "$out/events-$n.json" > "$out/events-$n.ndjson"
[ -x "$out/venv/bin/python" ] || { python3 -m venv "$out/venv" && "$out/venv/bin/pip" install -q duckdb pyarrow polars; }
mkdir -p "$out/small"
for i in $(seq 1 "$files"); do
  f="$out/small/events_$i.json"
  [ -s "$f" ] || "$tier" generate track_events --records 1000 --seed $((1000 + i)) -o "$f"
done

secs() { /usr/bin/time -f "%e" -o "$out/time" "$@" >/dev/null 2>"$out/stderr" || { cat "$out/stderr" >&2; exit 1; }; cat "$out/time"; }
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

duck_sql="COPY (SELECT *, CAST(CAST(\\\"segment_tracks.received_time\\\" AS TIMESTAMPTZ) AS DATE) AS date FROM read_json('$out/events-$n.ndjson')) TO '$out/duck' (FORMAT parquet, PARTITION_BY (date), COMPRESSION zstd, OVERWRITE_OR_IGNORE)"
lake_runs=(); duck_runs=(); before_runs=()
for _ in 1 2 3; do
  rm -rf "$out/ice" "$out/duck" "$out/plain"
  lake_runs+=("$(secs "$tier" load --progress never --lake "$out/ice" "$out/events-$n.json")")
  duck_runs+=("$(secs "$out/venv/bin/python" -c "import duckdb; duckdb.sql(\"$duck_sql\")")")
  if [ -n "$before" ]; then
    before_runs+=("$(secs "$before" load --progress never --lake "$out/plain" "$out/events-$n.json")")
  fi
done
lake=$(median "${lake_runs[@]}")
duck=$(median "${duck_runs[@]}")

export TIER_HOME="$(pwd)/$out/home"
trap '"$tier" -q db stop >/dev/null 2>&1 || true' EXIT
"$tier" -q db start >/dev/null
admin=$("$tier" db url)
url=${admin/\/tier\?//icebench?}
psql "$admin" -Xqc "DROP DATABASE IF EXISTS icebench" -c "CREATE DATABASE icebench"

rm -rf "$out/small-lake" "$out/small-sql" "$out/small-plain"
hint=$(secs "$tier" load --progress never --lake "$out/small-lake" "$out/small")
sql=$(secs "$tier" load --progress never --lake "$out/small-sql" --catalog-url "$url" "$out/small")
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
per() { python3 -c "print(f'{$1 * 1000 / $files:.1f}')"; }
echo "Machine: $(nproc) cores. Medians of 3 alternating runs."
echo
echo "| measure | seconds | ratio |"
echo "|---|---|---|"
echo "| \`tier load --lake\`, $n events → Iceberg tables (runs: ${lake_runs[*]}) | $lake | $(ratio "$lake" "$duck") × DuckDB |"
if [ -n "$before" ]; then
  b=$(median "${before_runs[@]}")
  echo "| the same, \`TIER_BEFORE\` (runs: ${before_runs[*]}) | $b | $(ratio "$b" "$duck") × DuckDB |"
fi
echo "| DuckDB \`COPY … TO … (FORMAT parquet, PARTITION_BY (date), COMPRESSION zstd)\` (runs: ${duck_runs[*]}) | $duck | 1 |"
echo "| $files files of 1,000 events, catalog of files | $hint | $(per "$hint") ms a file |"
echo "| the same, SQL catalog in PostgreSQL (\`--catalog-url\`) | $sql | $(per "$sql") ms a file |"
if [ -n "$before" ]; then
  plain=$(secs "$before" load --progress never --lake "$out/small-plain" "$out/small")
  echo "| the same, \`TIER_BEFORE\` | $plain | $(per "$plain") ms a file |"
fi
