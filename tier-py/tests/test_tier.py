"""The Python API against a real PostgreSQL server."""

from __future__ import annotations

import datetime
import decimal
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


DATA = Path(__file__).resolve().parents[2] / "tier-cli" / "tests" / "data"
RIDES = (
    '[{"rides.ride_id":"r1","rides.vehicle":"bike","rides.distance_km":3.5,"rides.passengers":1,'
    '"rides.fare_cents":9007199254740993,"rides.paid":true,"rides.started_at":"2024-03-01T10:00:00+01:00",'
    '"rides.service_day":"2024-03-01","rides.meta":{"a":[1,2.50]},'
    '"rides.tip":123456789012345678901234567890,"rides.pi":3.141592653589793238462643383279,"rides.f":0.1},\n'
    '{"rides.ride_id":"r2","rides.vehicle":"car","rides.started_at":"2024-03-02 08:00:00"},\n'
    '{"rides.ride_id":"r1","rides.distance_km":9,"rides.started_at":"2024-03-01 09:00:00"},\n'
)


def test_a_user_definition_through_every_function(db: Db, tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text(RIDES)
    defs = DATA / "rides.toml"
    report = tier.load(path, database_url=db.url, datasets=defs)
    assert (report.dataset, report.loaded, report.rejected) == ("rides", 1, 2)
    assert report.reject_reasons == {"invalid_value:vehicle": 1, "conflicting_duplicate": 1}
    assert db.scalar("SELECT fare_cents FROM rides") == "9007199254740993"
    assert db.scalar(
        "SELECT _extra->'rides.pi' = '3.141592653589793238462643383279'::jsonb FROM rides") == "t"
    # The conflicting duplicate within the file is found without a database too.
    assert tier.check(path, datasets=[str(defs)]).loaded == 1
    rows = list(tier.read(path, datasets=[defs]))
    assert len(rows) == 1
    r = rows[0]
    assert r["fare_cents"] == 9007199254740993 and r["paid"] is True
    assert r["service_day"] == datetime.date(2024, 3, 1)
    assert r["started_at"] == datetime.datetime(2024, 3, 1, 9, tzinfo=datetime.timezone.utc)
    assert r["meta"] == {"a": [1, 2.5]}
    extra = r["_extra"]
    assert isinstance(extra, dict)
    assert extra["rides.tip"] == 123456789012345678901234567890
    assert extra["rides.pi"] == decimal.Decimal("3.141592653589793238462643383279")
    assert extra["rides.f"] == 0.1 and isinstance(extra["rides.f"], float)
    assert "bigint" in tier.schema("rides", datasets=defs)
    with pytest.raises(tier.UsageError):
        tier.check(path, dataset="nope", datasets=defs)
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[columns]]\nname = "a"\ntype = "texte"\n')
    with pytest.raises(tier.UsageError, match="bad.toml:4"):
        tier.check(path, datasets=bad)


def test_infer_proposes_a_definition_that_loads_the_file(db: Db, tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text('{"id":"a","qty":1,"at":"2024-01-01 00:00:00"}\n{"id":"b","qty":2.5}\n')
    text = tier.infer(path, sample=10)
    assert 'name = "orders"' in text and 'type = "double"' in text
    assert 'name = "at"\ntype = "timestamptz"\n' in text and "partition_by" not in text
    (tmp_path / "orders.toml").write_text(text)
    report = tier.load(path, database_url=db.url, datasets=tmp_path / "orders.toml")
    assert report.loaded == 2
    with pytest.raises(tier.InputNotFoundError):
        tier.infer(tmp_path / "missing.json")


def test_an_interrupt_after_the_commit_says_what_committed(db: Db, tmp_path: Path) -> None:
    """Ctrl-C in the last moments of a load: the exception never hides a committed file."""
    import os
    import signal
    import time

    # Python's own handler (another library's, Spark's, may be installed by earlier tests).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tier.load(generate(tmp_path / "weather.json", "weather", 5, 1), database_url=db.url)
    # The signal comes at moments spread over what a load of a small file takes here (a few
    # milliseconds to tens), so that some come while a load runs, before or after its commit.
    started = time.monotonic()
    tier.load(generate(tmp_path / "warm.json", "weather", 3, 99), database_url=db.url)
    took = time.monotonic() - started
    committed_seen = False
    for i in range(40):
        if committed_seen and i >= 8:
            break
        path = generate(tmp_path / f"weather_{i}.json", "weather", 3, 100 + i)
        delay = took * (0.1 + 0.9 * (i % 10) / 10)
        timer = threading.Timer(delay, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        returned = False
        try:
            tier.load(path, database_url=db.url)
            returned = True
            timer.join()
            time.sleep(0.1)
        except KeyboardInterrupt as e:
            timer.join()
            if returned:
                continue  # the signal came after the call returned: try again
            rows = db.count(f"SELECT * FROM tier_loads WHERE source = '{path}' AND status = 'succeeded'")
            if "committed" in str(e):
                committed_seen = True
                assert rows == 1
                assert [r.path for r in e.reports] == [str(path)]  # type: ignore[attr-defined]
            else:
                assert rows == 0
    assert committed_seen, "no interrupt came after a commit"


def test_logging_follows_the_level_set_after_import(db: Db, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The usual order: `import tier` first, the logging level set later (in main())."""
    import logging

    path = generate(tmp_path / "weather.json", "weather", 5, 3)
    tier.load(path, database_url=db.url)
    caplog.set_level(logging.INFO, logger="tier")
    report = tier.load(path, database_url=db.url)
    assert report.status == "skipped"
    assert any("skipped" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records), caplog.records


def test_watch_metrics_equal_the_ledger(db: Db, tmp_path: Path) -> None:
    """`tier watch --metrics-addr`: /metrics parses, and its counters equal the ledger."""
    import time
    import urllib.request

    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    from conftest import free_port

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(3):
        generate(inbox / f"weather_{i}.json", "weather", 50, 10 + i, defects=0.1)
    port = free_port()
    proc = subprocess.Popen(
        [str(TIER_BIN), "watch", str(inbox), "--database-url", db.url, "--interval", "0.1",
         "--settle", "0", "--metrics-addr", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if db.count("SELECT * FROM tier_loads") == 3:
                    break
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.1)
        time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as r:
            assert r.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
            text = r.read().decode()
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("tier_files_total", (("status", "succeeded"),))] == 3
    loaded = int(db.scalar("SELECT sum(loaded) FROM tier_loads"))
    rejected = int(db.scalar("SELECT sum(rejected) FROM tier_loads"))
    assert samples[("tier_records_total", (("dataset", "weather"), ("outcome", "loaded")))] == loaded
    assert samples[("tier_records_total", (("dataset", "weather"), ("outcome", "rejected")))] == rejected
    assert samples[("tier_backlog_files", ())] == 0
    assert samples[("tier_lag_seconds_count", ())] == 3
