#!/usr/bin/env bash
# Fuzzes for SECONDS (default 60) each: the reader and the validator, connection strings,
# .pgpass and service files, dataset definitions and inference samples. With cargo-fuzz
# (libFuzzer) where a nightly toolchain and cargo-fuzz are installed, else with mutated exports
# and mutated seed corpora (tier-core/tests/fuzz.rs). Either way: no input may panic, every
# record is accounted for, and a definition accepted (or inferred) makes valid tables.
# Usage: scripts/fuzz.sh [SECONDS]   (TIER_FUZZ_SEED=N replays a run of the second kind)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
if cargo +nightly fuzz --version >/dev/null 2>&1; then
  cd tier-core/fuzz
  for target in reader connection definition infer; do
    cargo +nightly fuzz run "$target" -- -max_total_time="$seconds"
  done
  exit 0
fi
echo "cargo-fuzz on a nightly toolchain not found: fuzzing with mutated exports instead" >&2
TIER_FUZZ_SECONDS=$seconds exec cargo test --release -p tier-core --test fuzz -- --ignored --nocapture
