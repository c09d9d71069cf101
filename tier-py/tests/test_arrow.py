"""The Python face as a good citizen: Arrow out, logging, Ctrl-C, the version."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest

import tier
from conftest import Db, generate

DATA = Path(__file__).resolve().parents[2] / "tier-cli" / "tests" / "data"


def test_arrow_tables_have_the_definition_types(tmp_path: Path) -> None:
    path = generate(tmp_path / "weather.json", "weather", 3000, 2, defects=0.05)
    report = tier.check(path)
    t = pa.table(tier.read(path, batch_size=1000))
    assert t.num_rows == report.loaded
    assert t.column_names[:2] == ["city", "date_time"]
    assert t.column_names[-2:] == ["_extra", "_record_index"]
    assert t.schema.field("date_time").type == pa.timestamp("us", tz="UTC")
    assert t.schema.field("currently_humidity").type == pa.float64()
    assert t.schema.field("_record_index").type == pa.int64()
    assert t.schema.field("_extra").type.extension_name == "arrow.json"
    assert not t.schema.field("city").nullable
    assert t.column("_record_index").to_pylist() == sorted(t.column("_record_index").to_pylist())
    df = pl.DataFrame(tier.read(path))
    assert df.height == report.loaded and df.schema["date_time"] == pl.Datetime("us", "UTC")
    reader = tier.read(path)
    assert duckdb.sql("SELECT count(*) FROM reader").fetchall() == [(report.loaded,)]
    rejects = pa.table(tier.read_rejects(path))
    assert rejects.column_names == ["_record_index", "reason", "raw"]
    assert rejects.num_rows == report.rejected
    assert pa.table(tier.read(path).rejects()).num_rows == rejects.num_rows
    # The same rows as the dict iterator.
    rows = list(tier.read_rows(path))
    assert [r["_record_index"] for r in rows] == t.column("_record_index").to_pylist()
    assert [r["city"] for r in tier.read(path)] == t.column("city").to_pylist()


def test_a_user_dataset_as_arrow(tmp_path: Path) -> None:
    path = tmp_path / "rides.json"
    path.write_text(
        '{"rides.ride_id":"a","rides.started_at":"2024-03-01 10:00:00","rides.service_day":"2024-03-01",'
        '"rides.paid":true,"rides.meta":{"k":[1,2]},"rides.fare_cents":9007199254740993,"rides.passengers":2}\n'
        '{"rides.ride_id":"b","rides.started_at":"2024-03-01 11:00:00","rides.vehicle":"car"}\n'
    )
    t = pa.table(tier.read(path, datasets=DATA / "rides.toml"))
    assert t.num_rows == 1
    assert t.schema.field("service_day").type == pa.date32()
    assert t.schema.field("passengers").type == pa.int16()
    assert t.schema.field("duration_s").type == pa.int32()
    assert t.schema.field("fare_cents").type == pa.int64()
    assert t.schema.field("paid").type == pa.bool_()
    assert t.column("fare_cents").to_pylist() == [9007199254740993]
    assert pa.table(tier.read_rejects(path, datasets=DATA / "rides.toml")).column("reason").to_pylist() == [
        "invalid_value:vehicle"
    ]
    with pytest.raises(tier.InputNotFoundError):
        tier.read(tmp_path / "missing.json")


def test_logging_receives_tier_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "weather.json"
    path.write_text('{"city": "Oslo"}\n{"city": "Rome"}\n')
    with caplog.at_level(logging.WARNING, logger="tier"):
        tier.check(path)
    assert any("2 of 2 records rejected" in r.getMessage() and r.name == "tier" for r in caplog.records)


def test_ctrl_c_stops_a_load_and_commits_nothing(db: Db, tmp_path: Path) -> None:
    path = generate(tmp_path / "track_events.json", "track_events", 400_000, 8)
    script = (
        "import sys, tier\n"
        "print('start', flush=True)\n"
        "try:\n"
        f"    tier.load({str(path)!r}, database_url={db.url!r})\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "    sys.exit(130)\n"
        "print('finished', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "start"
    # Wait until the COPY runs on the server, then Ctrl-C.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if db.count("SELECT * FROM pg_stat_activity WHERE query LIKE 'COPY%track_events%'") > 0:
            break
        time.sleep(0.02)
    else:
        pytest.fail("the load was never seen copying")
    sent = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    assert "interrupted" in out
    assert time.monotonic() - sent < 3
    assert db.count("SELECT * FROM track_events") == 0
    assert db.count("SELECT * FROM tier_loads WHERE status = 'succeeded'") == 0


def test_version() -> None:
    assert tier.__version__ == "0.1.0"
