"""The Python API against a real PostgreSQL server."""

from __future__ import annotations

import datetime
import json
import subprocess
import threading
from pathlib import Path

import pytest

import tier
from conftest import TIER_BIN, Db, generate

REPORT_KEYS = {
    "path", "dataset", "table", "sha256", "bytes", "records", "loaded", "duplicates",
    "rejected", "reject_reasons", "unknown_fields", "status", "load_id", "seconds",
}


def test_load_report_matches_the_tables(db: Db, sample: Path) -> None:
    for name in ("track_events", "weather"):
        report = tier.load(sample / f"{name}.json", database_url=db.url)
        d = report.to_dict()
        assert set(d) == REPORT_KEYS
        assert d["status"] == report.status == "succeeded"
        assert report.records == report.loaded + report.duplicates + report.rejected
        assert report.rejected > 0
        assert db.count(f"SELECT * FROM {name}") == report.loaded == d["loaded"]
        assert db.count(f"SELECT * FROM {name}_rejects") == report.rejected
        reasons = json.loads(db.scalar(
            f"SELECT coalesce(json_object_agg(reason, n), '{{}}') FROM "
            f"(SELECT reason, count(*) n FROM {name}_rejects GROUP BY 1) r"))
        assert reasons == report.reject_reasons
        assert db.scalar(f"SELECT status FROM tier_loads WHERE load_id = {report.load_id}") == "succeeded"
    assert "Report(" in repr(report) and "weather" in repr(report)


def test_to_dict_equals_the_cli_report(db: Db, sample: Path) -> None:
    out = subprocess.run(
        [str(TIER_BIN), "check", str(sample / "weather.json"), "--report", "json"],
        check=True, capture_output=True, text=True,
    )
    cli = json.loads(out.stdout)["files"][0]
    mine = tier.check(str(sample / "weather.json")).to_dict()
    for volatile in ("seconds",):
        cli.pop(volatile)
        mine.pop(volatile)
    assert mine == cli


def test_reload_is_skipped(db: Db, sample: Path) -> None:
    first = tier.load(sample / "weather.json", database_url=db.url)
    again = tier.load(sample / "weather.json", database_url=db.url)
    assert again.status == "skipped"
    assert again.load_id == first.load_id
    assert db.count("SELECT * FROM weather") == first.loaded
    forced = tier.load(sample / "weather.json", database_url=db.url, force=True)
    assert forced.loaded == 0
    assert db.count("SELECT * FROM weather") == first.loaded


def test_missing_file(db: Db, tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(tier.InputNotFoundError) as e:
        tier.load(missing, database_url=db.url)
    assert isinstance(e.value, tier.TierError)
    assert isinstance(e.value, FileNotFoundError)
    assert str(missing) in str(e.value)
    with pytest.raises(tier.TierError):
        tier.check(missing)


def test_database_error_hides_the_password(sample: Path) -> None:
    with pytest.raises(tier.DatabaseError) as e:
        tier.load(sample / "weather.json", database_url="postgresql://u:hunter2@127.0.0.1:1/x")
    assert "hunter2" not in str(e.value)
    assert "cannot connect" in str(e.value)


def test_quality_gate(db: Db, tmp_path: Path) -> None:
    bad = generate(tmp_path / "weather.json", "weather", 300, 5, defects=0.3)
    with pytest.raises(tier.QualityGateError) as e:
        tier.load(bad, database_url=db.url, max_reject_ratio=0.01)
    assert isinstance(e.value, tier.TierError)
    assert e.value.report.status == "failed"  # type: ignore[attr-defined]
    assert db.count("SELECT * FROM weather") == 0
    assert db.count("SELECT * FROM tier_loads WHERE status = 'failed'") == 1


def test_parse_and_usage_errors(tmp_path: Path) -> None:
    gz = tmp_path / "weather.json.gz"
    gz.write_bytes(b"\x1f\x8b not gzip")
    with pytest.raises(tier.ParseError) as e:
        tier.check(gz)
    assert "weather.json.gz" in str(e.value)
    anon = tmp_path / "events.json"
    anon.write_text('{"a": 1}\n')
    with pytest.raises(tier.ParseError):
        tier.check(anon)
    with pytest.raises(tier.UsageError):
        tier.check(anon, dataset="nope")
    assert tier.check(anon, dataset="weather").reject_reasons == {"missing_field:city": 1}


def test_read_streams_typed_rows(sample: Path) -> None:
    rows = tier.read(sample / "weather.json")
    first = next(rows)
    assert isinstance(first["city"], str)
    when = first["date_time"]
    assert isinstance(when, datetime.datetime)
    assert when.utcoffset() == datetime.timedelta(0)
    assert isinstance(first["currently_temperature"], float)
    assert isinstance(first["_extra"], dict) and "weather_data.currently_ozone" in first["_extra"]
    assert first["_record_index"] == 0
    total = 1 + sum(1 for _ in rows)
    assert total == tier.check(sample / "weather.json").loaded
    ratings = [r["properties_rating"] for r in tier.read(str(sample / "track_events.json"))]
    assert any(isinstance(r, int) for r in ratings)
    assert all(r is None or 1 <= r <= 5 for r in ratings)


def test_read_timestamp_values() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t.json"
        p.write_text('{"anonymous_id":"a","event_name":"e","received_time":"2019-05-13T16:23:41.25+02:00"}\n')
        row = next(tier.read(p, dataset="track_events"))
        assert row["received_time"] == datetime.datetime(2019, 5, 13, 14, 23, 41, 250000, tzinfo=datetime.timezone.utc)
        assert row["sent_time"] is None


def test_gil_is_released(tmp_path: Path) -> None:
    big = generate(tmp_path / "track_events.json", "track_events", 150_000, 9)
    done = threading.Event()
    result: list[tier.Report] = []

    def work() -> None:
        result.append(tier.check(big))
        done.set()

    t = threading.Thread(target=work)
    ticks = 0
    t.start()
    while not done.is_set():
        ticks += 1
    t.join()
    assert result[0].records == 150_000
    assert ticks > 10_000, ticks


def test_schema() -> None:
    ddl = tier.schema("weather")
    assert 'CREATE TABLE IF NOT EXISTS "public"."weather"' in ddl
    assert "track_events" not in ddl
    assert '"analytics"."tier_loads"' in tier.schema(schema="analytics")
