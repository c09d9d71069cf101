"""The lake from Python: tier.load(lake=...), read back by pyarrow, DuckDB and polars."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import tier
from conftest import Db, generate

DATA = Path(__file__).resolve().parents[2] / "tier-cli" / "tests" / "data"


def test_lake_types_counts_and_partitions(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    generate(src / "track_events.json", "track_events", 2000, 3, defects=0.05)
    generate(src / "weather.json", "weather", 900, 4, defects=0.05)
    lake = tmp_path / "lake"
    reports = tier.load(src, lake=lake)
    assert isinstance(reports, list) and [r.dataset for r in reports] == ["track_events", "weather"]
    w = reports[1]
    assert w.table == "lake:weather" and w.status == "succeeded"
    assert all(p.startswith(("weather/date=", "weather_rejects/")) for p in w.parts)

    # The metadata folder of the Iceberg table is no Parquet: passed over.
    rows = ds.dataset(
        lake / "weather", format="parquet", partitioning="hive", exclude_invalid_files=True
    ).to_table()
    assert rows.num_rows == w.loaded
    schema = pq.read_schema(lake / w.parts[0])
    assert schema.field("city").type == pa.string() and not schema.field("city").nullable
    assert schema.field("date_time").type == pa.timestamp("us", tz="UTC")
    assert schema.field("currently_temperature").type == pa.float64()
    assert schema.field("_load_id").type == pa.int64()
    assert schema.field("_record_index").type == pa.int64()
    logical = pq.ParquetFile(lake / w.parts[0]).schema.column(schema.get_field_index("_extra"))
    assert logical.logical_type.type == "JSON"
    extra = [json.loads(x) for x in rows.column("_extra").to_pylist() if x is not None]
    assert extra and all("weather_data.currently_ozone" in e for e in extra)
    # Every row sits in the folder of its UTC day.
    days = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{lake}/weather/*/*.parquet', hive_partitioning=true) "
        "WHERE CAST(date AS VARCHAR) <> strftime(date_time AT TIME ZONE 'UTC', '%Y-%m-%d')"
    ).fetchall()
    assert days == [(0,)]
    rejects = pq.read_table(next((lake / "weather_rejects").glob("*.parquet")))
    assert rejects.column_names == ["_load_id", "_record_index", "reason", "raw"]
    assert rejects.num_rows == w.rejected
    reasons: dict[str, int] = {}
    for r in rejects.column("reason").to_pylist():
        reasons[r] = reasons.get(r, 0) + 1
    assert reasons == w.reject_reasons
    te = pl.read_parquet(lake / "track_events" / "**" / "*.parquet", hive_partitioning=True)
    assert te.height == reports[0].loaded
    assert te.schema["properties_rating"] == pl.Int16

    again = tier.load([src / "weather.json"], lake=lake)
    assert [r.status for r in again] == ["skipped"]


def test_a_user_dataset_goes_to_the_lake(tmp_path: Path) -> None:
    path = tmp_path / "rides.json"
    path.write_text(
        '{"rides.ride_id":"a","rides.started_at":"2024-03-01 23:30:00-02:00","rides.service_day":"2024-03-01",'
        '"rides.paid":true,"rides.meta":{"k":[1,2]},"rides.fare_cents":9007199254740993}\n'
    )
    report = tier.load(path, lake=tmp_path / "lake", datasets=DATA / "rides.toml")
    assert report.parts == [f"rides/date=2024-03-02/part-{report.sha256[:16]}-0000.parquet"]
    t = pq.read_table(tmp_path / "lake" / report.parts[0])
    assert t.schema.field("service_day").type == pa.date32()
    assert t.schema.field("fare_cents").type == pa.int64()
    assert t.schema.field("passengers").type == pa.int16()
    assert t.schema.field("duration_s").type == pa.int32()
    assert t.schema.field("paid").type == pa.bool_()
    row = t.to_pylist()[0]
    assert row["fare_cents"] == 9007199254740993 and json.loads(row["meta"]) == {"k": [1, 2]}


def test_many_files_jobs_and_errors(db: Db, tmp_path: Path) -> None:
    for i in range(4):
        generate(tmp_path / f"weather-{i}.json", "weather", 200, 10 + i)
    reports = tier.load(sorted(tmp_path.glob("*.json")), database_url=db.url, jobs=2)
    assert [Path(r.path).name for r in reports] == [f"weather-{i}.json" for i in range(4)]
    assert db.count("SELECT * FROM tier_loads WHERE status = 'succeeded'") == 4
    checked = tier.check([tmp_path], jobs=2)
    assert len(checked) == 4 and all(r.status == "checked" for r in checked)
    with pytest.raises(tier.InputNotFoundError) as e:
        tier.load([tmp_path / "weather-0.json", tmp_path / "nope.json"], database_url=db.url)
    assert "nope.json" in str(e.value)
