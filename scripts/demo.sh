#!/usr/bin/env bash
# The main job on a fresh machine: build tier, load data/ into the embedded PostgreSQL (created
# under ./.tier and left running), and show what landed where.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-postgres.sh
if [ ! -x target/release/tier ]; then
  echo "building tier (release): the first build takes about 10 minutes on 2 cores…" >&2
fi
cargo build --release --locked --bin tier
tier=target/release/tier
"$tier" load data/
"$tier" -q db psql -X -c "SELECT 'track_events' AS table_name, count(*) AS rows FROM track_events
                      UNION ALL SELECT 'weather', count(*) FROM weather" \
  -c "SELECT 'track_events' AS table_name, reason, count(*) FROM track_events_rejects GROUP BY 2
      UNION ALL SELECT 'weather', reason, count(*) FROM weather_rejects GROUP BY 2 ORDER BY 1, 3 DESC" \
  -c "SELECT load_id, source, status, records, loaded, duplicates, rejected FROM tier_loads ORDER BY load_id"
echo "The database keeps running: target/release/tier db psql to query it, target/release/tier db stop to stop it."
