"""The lake as Iceberg tables, read by tools tier did not write: pyiceberg (a static table from
the metadata file, and its SqlCatalog on the PostgreSQL catalog) and polars (scan_iceberg), with
the counts and values of the PostgreSQL load of the same files."""

from __future__ import annotations

import os
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

os.environ.setdefault("POLARS_ICEBERG_PLANNER", "pyiceberg")
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import StaticTable, Table

import tier
from conftest import S3, Db, generate


def current_metadata(table: Path) -> str:
    hint = (table / "metadata" / "version-hint.text").read_text().strip()
    return f"file://{table}/metadata/v{hint}.metadata.json"


def rows_in_pg(db: Db, table: str) -> list[tuple[str, ...]]:
    out = db.scalar(
        f"SELECT string_agg(anonymous_id || '|' || event_name || '|' || "
        f"extract(epoch FROM received_time)::bigint, E'\\n' ORDER BY 1) FROM {table}"
    )
    return sorted(tuple(line.split("|")) for line in out.splitlines())


def rows_in(df: pl.DataFrame) -> list[tuple[str, ...]]:
    return sorted(
        (a, e, str(int(t.timestamp())))
        for a, e, t in df.select("anonymous_id", "event_name", "received_time").iter_rows()
    )


def sql_catalog(db: Db) -> SqlCatalog:
    return SqlCatalog("tier", uri=db.url.replace("postgresql://", "postgresql+psycopg2://", 1))


def test_iceberg_lake_equals_the_postgres_load(tmp_path: Path, db: Db) -> None:
    files = [
        generate(tmp_path / f"day{i}.json", "track_events", 1500, 20 + i, defects=0.05)
        for i in range(3)
    ]
    lake = tmp_path / "lake"
    reports = tier.load(files, lake=lake)
    tier.load(files, database_url=db.url)
    table = StaticTable.from_metadata(current_metadata(lake / "track_events"))
    # One snapshot per file, each saying which file and load it holds.
    snaps = table.snapshots()
    assert len(snaps) == 3
    for snap, report in zip(snaps, reports):
        assert snap.summary is not None
        props: dict[str, Any] = snap.summary.additional_properties
        assert props["tier.sha256"] == report.sha256
        assert props["tier.source"] == report.path
        assert props["tier.load-id"] == str(report.load_id)
        assert snap.summary.operation.value == "append"
    assert str(table.spec().fields[0].transform) == "day"
    # pyiceberg and polars read the rows PostgreSQL holds.
    arrow = table.scan().to_arrow()
    pg = rows_in_pg(db, "track_events")
    assert arrow.num_rows == len(pg)
    assert rows_in(pl.from_arrow(arrow)) == pg  # type: ignore[arg-type]
    assert rows_in(pl.scan_iceberg(table).collect()) == pg
    # Time travel: the first snapshot holds the first file's rows.
    first = table.scan(snapshot_id=snaps[0].snapshot_id).to_arrow()
    assert first.num_rows == reports[0].loaded
    # Pruning by the day partition and the file statistics gives the same answer as a filter.
    day = arrow.column("received_time").to_pylist()[0]
    pruned = table.scan(row_filter=f"received_time >= '{day.isoformat()}'").to_arrow()
    assert pruned.num_rows == sum(1 for t in arrow.column("received_time").to_pylist() if t >= day)
    # Rejects are an Iceberg table too.
    rejects = StaticTable.from_metadata(current_metadata(lake / "track_events_rejects"))
    assert rejects.scan().to_arrow().num_rows == sum(r.rejected for r in reports)


def test_the_sql_catalog_is_read_by_pyiceberg(tmp_path: Path, db: Db) -> None:
    v1 = tmp_path / "v1.toml"
    base = (
        'name = "visits"\npartition_by = "at"\n'
        '[[columns]]\nname = "page"\ntype = "text"\nrequired = true\n'
        '[[columns]]\nname = "at"\ntype = "timestamptz"\nrequired = true\n'
    )
    v1.write_text(base)
    v2 = tmp_path / "v2.toml"
    v2.write_text(base + '[[columns]]\nname = "secs"\ntype = "integer"\n')
    f1 = tmp_path / "visits-1.json"
    f1.write_text('{"page": "a", "at": "2024-05-01T10:00:00Z", "secs": 3}\n')
    f2 = tmp_path / "visits-2.json"
    f2.write_text('{"page": "b", "at": "2024-05-02T10:00:00Z", "secs": 5}\n')
    lake = tmp_path / "lake"
    one = tier.load(f1, lake=lake, datasets=v1, dataset="visits", catalog_url=db.url)
    two = tier.load(f2, lake=lake, datasets=v2, dataset="visits", catalog_url=db.url)
    catalog = sql_catalog(db)
    assert ("tier",) in catalog.list_namespaces()
    table: Table = catalog.load_table("tier.visits")
    assert [s.summary.additional_properties["tier.load-id"] for s in table.snapshots()] == [  # type: ignore[union-attr]
        str(one.load_id),
        str(two.load_id),
    ]
    # The ledger is the catalog database's, and agrees with the snapshots.
    assert db.scalar(
        "SELECT string_agg(load_id::text, ',' ORDER BY load_id) FROM tier_loads "
        "WHERE target_table = 'lake:visits' AND status = 'succeeded'"
    ) == f"{one.load_id},{two.load_id}"
    # Schema evolution: a new optional field; the earlier file reads null there.
    secs = table.schema().find_field("secs")
    assert not secs.required
    assert len(table.schemas()) == 2
    got = sorted(table.scan().to_arrow().select(["page", "secs"]).to_pylist(), key=lambda r: r["page"])
    assert got == [{"page": "a", "secs": None}, {"page": "b", "secs": 5}]
    old = table.scan(snapshot_id=table.snapshots()[0].snapshot_id).to_arrow()
    assert old.column("page").to_pylist() == ["a"]
    # A re-run adds no snapshot.
    assert tier.load(f1, lake=lake, datasets=v1, dataset="visits", catalog_url=db.url).status == "skipped"
    assert len(catalog.load_table("tier.visits").snapshots()) == 2


def test_an_iceberg_lake_on_s3(tmp_path: Path, s3: S3) -> None:
    b = s3.bucket("ice-" + uuid.uuid4().hex[:10])
    files = [generate(tmp_path / f"w{i}.json", "weather", 800, 30 + i, defects=0.05) for i in range(2)]
    reports = tier.load(files, lake=f"s3://{b}/lake")
    hint = s3.client().get_object(Bucket=b, Key="lake/weather/metadata/version-hint.text")
    version = hint["Body"].read().decode().strip()
    table = StaticTable.from_metadata(
        f"s3://{b}/lake/weather/metadata/v{version}.metadata.json",
        properties={
            "s3.endpoint": s3.endpoint,
            "s3.access-key-id": S3.KEY,
            "s3.secret-access-key": S3.SECRET,
            "s3.region": "us-east-1",
        },
    )
    assert len(table.snapshots()) == 2
    assert table.scan().to_arrow().num_rows == sum(r.loaded for r in reports)
    # A table on the bucket loads back by its URL, at its current snapshot.
    assert sum(r.loaded for r in tier.check(f"s3://{b}/lake/weather")) == sum(
        r.loaded for r in reports
    )


def test_spark_reads_the_sql_catalog(tmp_path: Path, db: Db) -> None:
    jar = os.environ.get("TIER_ICEBERG_SPARK_JAR")
    if not jar:
        pytest.skip(
            "Spark needs Iceberg's runtime jar (iceberg-spark-runtime), which is not in this "
            "machine's package registries: set TIER_ICEBERG_SPARK_JAR to its path to run this"
        )
    from pyspark.sql import SparkSession

    f = generate(tmp_path / "e.json", "track_events", 500, 7)
    report = tier.load(f, lake=tmp_path / "lake", catalog_url=db.url)
    jdbc = db.url.replace("postgresql://", "jdbc:postgresql://", 1)
    spark = (
        SparkSession.builder.master("local[1]")
        .config("spark.jars", jar)
        .config("spark.sql.catalog.tier", "org.apache.iceberg.spark.SparkCatalog")
        .config("spark.sql.catalog.tier.catalog-impl", "org.apache.iceberg.jdbc.JdbcCatalog")
        .config("spark.sql.catalog.tier.uri", jdbc)
        .getOrCreate()
    )
    try:
        assert spark.sql("SELECT count(*) FROM tier.tier.track_events").collect()[0][0] == report.loaded
    finally:
        spark.stop()


def test_manifests_are_merged_as_files_keep_landing(tmp_path: Path) -> None:
    """One commit per file: from the hundredth, the manifests so far become one, and every
    snapshot still reads what it held."""
    defs = tmp_path / "visits.toml"
    defs.write_text(
        'name = "visits"\npartition_by = "at"\n'
        '[[columns]]\nname = "page"\ntype = "text"\nrequired = true\n'
        '[[columns]]\nname = "at"\ntype = "timestamptz"\nrequired = true\n'
    )
    files = []
    for i in range(101):
        f = tmp_path / "in" / f"visits-{i:03}.json"
        f.parent.mkdir(exist_ok=True)
        day = date(2024, 1, 1) + timedelta(days=i)
        f.write_text(f'{{"page": "p{i}", "at": "{day.isoformat()}T10:00:00Z"}}\n')
        files.append(f)
    lake = tmp_path / "lake"
    reports = tier.load(files, lake=lake, datasets=defs, dataset="visits")
    assert [r.status for r in reports] == ["succeeded"] * 101
    table = StaticTable.from_metadata(current_metadata(lake / "visits"))
    snaps = table.snapshots()
    assert len(snaps) == 101
    current = table.current_snapshot()
    assert current is not None
    manifests = current.manifests(table.io)
    assert len(manifests) == 3  # the 99 before the 100th merged, the 100th's, the 101st's
    assert sum(m.existing_files_count or 0 for m in manifests) == 99
    pages = sorted(table.scan().to_arrow().column("page").to_pylist())
    assert pages == sorted(f"p{i}" for i in range(101))
    # Earlier snapshots read what they held, before and after the merge.
    for n in (50, 100):
        held = table.scan(snapshot_id=snaps[n - 1].snapshot_id).to_arrow()
        assert held.num_rows == n
    # The merged manifest's partition summary and its files' statistics still prune.
    late = table.scan(row_filter="at >= '2024-04-01T00:00:00+00:00'").to_arrow()
    assert sorted(late.column("page").to_pylist()) == sorted(f"p{i}" for i in range(91, 101))
    assert len(table.scan(row_filter="at >= '2024-04-01T00:00:00+00:00'").plan_files()) == 10
