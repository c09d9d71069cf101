#!/usr/bin/env bash
# A longer chaos run of `tier watch`: three watchers on an inbox of FILES files (some copies
# under new names, one defective), each killed with SIGKILL at random moments and started again,
# the server restarted at once half-way; at the end every file is loaded once and no row twice.
# Usage: scripts/chaos.sh [SECONDS] [FILES]   (defaults 180 and 400)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-postgres.sh
TIER_CHAOS_SECONDS=${1:-180} TIER_CHAOS_FILES=${2:-400} \
  exec cargo test --release -p tier-cli --test watch chaos -- --nocapture
