#!/usr/bin/env bash
# Fuzzes the reader and the validator for SECONDS (default 60): with cargo-fuzz (libFuzzer)
# where a nightly toolchain and cargo-fuzz are installed, else with mutated generated exports
# (tier-core/tests/fuzz.rs). Either way: no input may panic, every record is accounted for.
# Usage: scripts/fuzz.sh [SECONDS]   (TIER_FUZZ_SEED=N replays a run of the second kind)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
if cargo +nightly fuzz --version >/dev/null 2>&1; then
  cd tier-core/fuzz
  exec cargo +nightly fuzz run reader -- -max_total_time="$seconds"
fi
echo "cargo-fuzz on a nightly toolchain not found: fuzzing with mutated exports instead" >&2
TIER_FUZZ_SECONDS=$seconds exec cargo test --release -p tier-core --test fuzz -- --ignored --nocapture
