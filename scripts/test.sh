#!/usr/bin/env bash
# Builds everything and runs every test: formatting, lints, Rust tests and Python tests, against
# one throwaway PostgreSQL server started for the run (a fresh database per test).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/ensure-postgres.sh
# Java for the Spark tests (pyspark runs Spark in local mode).
if ! command -v java >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Java (Debian package default-jre-headless)…" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq default-jre-headless >/dev/null
  else
    echo "java is missing (the Spark tests need it): install default-jre-headless" >&2
    exit 1
  fi
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --all-targets

# The test server: an embedded cluster in a short temporary directory.
home=$(mktemp -d /tmp/tier-test.XXXXXX)
chmod 755 "$home"
stop() { TIER_HOME="$home" "$root/target/debug/tier" -q db stop >/dev/null 2>&1 || true; rm -rf "$home" 2>/dev/null || true; }
trap stop EXIT
TIER_HOME="$home" target/debug/tier -q db start >/dev/null
TIER_TEST_DATABASE_URL=$(TIER_HOME="$home" target/debug/tier db url)
export TIER_TEST_DATABASE_URL

# The Python tools, first: the Rust tests use moto_server too.
venv="$root/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip >/dev/null
# moto_server is the S3-compatible server of the object-storage tests; pyspark runs local[2].
"$venv/bin/pip" install -q maturin pytest mypy pyyaml pyarrow duckdb polars 'moto[server]' boto3 pyspark prometheus_client 'pyiceberg[sql-postgres,pyarrow]'
export TIER_TEST_MOTO_SERVER="$venv/bin/moto_server"
# Every prerequisite is here: a test that finds one missing fails rather than skips.
export TIER_TEST_STRICT=1

log=$(mktemp)
cargo test --workspace 2>&1 | tee "$log"

# Python: the module built with maturin and installed as a user would, then pytest.
# One abi3 wheel, stripped: its tags and size are checked before it is installed.
rm -rf target/wheels-test
"$venv/bin/maturin" build --quiet -m tier-py/Cargo.toml --compatibility manylinux_2_34 -o target/wheels-test
wheel=$(ls target/wheels-test/tier-*.whl)
size=$(stat -c %s "$wheel")
echo "wheel: $(basename "$wheel"), $((size / 1024)) KiB"
case "$(basename "$wheel")" in *-cp39-abi3-manylinux_2_34_x86_64.whl) ;; *) echo "the wheel is not abi3 (cp39) manylinux_2_34" >&2; exit 1 ;; esac
[ "$size" -lt $((8 << 20)) ] || { echo "the wheel is larger than 8 MiB" >&2; exit 1; }
"$venv/bin/pip" install -q --force-reinstall "$wheel"
"$venv/bin/python" -m pytest -q tier-py/tests | tee -a "$log"
"$venv/bin/python" -m mypy --strict tier-py/examples/usage.py tier-py/python/tier/spark.py
"$venv/bin/python" -m mypy.stubtest tier._tier --allowlist tier-py/stubtest-allowlist.txt

# One closing line over every runner: Rust (cargo test) and Python (pytest).
awk '/^test result:/ { p += $4; f += $6 }
     / passed/ && !/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
