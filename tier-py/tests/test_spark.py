"""tier.spark.load: one Spark task per file in local[2], each calling the same core."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import pyarrow.parquet as pq
import pytest

import tier
import tier.spark
from conftest import S3, TIER_BIN, Db, generate

pyspark = pytest.importorskip("pyspark")


@pytest.fixture(scope="module")
def spark(s3_server: S3) -> Iterator[Any]:
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("tier-test")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.task.maxFailures", "2")
    )
    # The executors reach the object store through the standard variables, as on a cluster.
    for k, v in s3_server.env.items():
        builder = builder.config(f"spark.executorEnv.{k}", v)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def four_files(tmp_path: Path) -> list[Path]:
    src = tmp_path / "src"
    src.mkdir()
    return [
        generate(src / f"day{i}.json", "track_events", 1500 + 250 * i, 20 + i, defects=0.02)
        for i in range(4)
    ]


def test_four_files_each_row_once_and_again_all_skipped(tmp_path: Path, spark: Any, db: Db) -> None:
    files = four_files(tmp_path)
    reports = tier.spark.load(spark, [tmp_path / "src"], database_url=db.url)
    assert [r["path"] for r in reports] == [str(f) for f in files]
    assert [r["status"] for r in reports] == ["succeeded"] * 4
    assert len({r["load_id"] for r in reports}) == 4
    loaded = sum(r["loaded"] for r in reports)
    assert all(r["loaded"] + r["duplicates"] + r["rejected"] == r["records"] for r in reports)
    assert [r["records"] for r in reports] == [tier.check(f).records for f in files]
    assert db.count("SELECT 1 FROM track_events") == loaded
    assert db.count("SELECT DISTINCT _load_id, _record_index FROM track_events") == loaded
    assert db.count("SELECT 1 FROM track_events_rejects") == sum(r["rejected"] for r in reports)
    assert db.scalar("SELECT string_agg(status, ',') FROM tier_loads") == ",".join(["succeeded"] * 4)

    again = tier.spark.load(spark, [str(f) for f in files], database_url=db.url)
    assert [r["status"] for r in again] == ["skipped"] * 4
    assert db.count("SELECT 1 FROM track_events") == loaded


def test_lake_writes_the_same_parts_as_the_cli(tmp_path: Path, spark: Any) -> None:
    files = four_files(tmp_path)
    reports = tier.spark.load(spark, files, lake=tmp_path / "spark-lake")
    assert [r["status"] for r in reports] == ["succeeded"] * 4
    cli = subprocess.run(
        [str(TIER_BIN), "-q", "load", *map(str, files), "--lake", str(tmp_path / "cli-lake")],
        capture_output=True, text=True,
    )
    assert cli.returncode == 0, cli.stderr
    ours = sorted(p.relative_to(tmp_path / "spark-lake") for p in (tmp_path / "spark-lake").rglob("*.parquet"))
    theirs = sorted(p.relative_to(tmp_path / "cli-lake") for p in (tmp_path / "cli-lake").rglob("*.parquet"))
    assert ours and ours == theirs
    assert sorted(p for r in reports for p in r["parts"]) == [str(p) for p in ours]
    for part in ours:
        a = pq.read_table(tmp_path / "spark-lake" / part).drop_columns(["_load_id"])
        b = pq.read_table(tmp_path / "cli-lake" / part).drop_columns(["_load_id"])
        assert a.equals(b), part


def test_s3_prefix_expanded_on_the_driver(tmp_path: Path, spark: Any, s3: S3, db: Db) -> None:
    b = s3.bucket("spark-" + uuid.uuid4().hex[:8])
    files = four_files(tmp_path)[:2]
    for f in files:
        s3.put(f"s3://{b}/in/{f.name}", f)
    reports = tier.spark.load(spark, f"s3://{b}/in/", database_url=db.url)
    assert [r["path"] for r in reports] == [f"s3://{b}/in/{f.name}" for f in files]
    assert db.count("SELECT 1 FROM track_events") == sum(r["loaded"] for r in reports) > 0


def test_a_failed_file_comes_back_as_its_report(tmp_path: Path, spark: Any, db: Db) -> None:
    files = four_files(tmp_path)[:2]
    bad = generate(tmp_path / "bad.json", "track_events", 500, 7, defects=0.5)
    reports = tier.spark.load(spark, [files[0], bad], database_url=db.url, max_reject_ratio=0.1)
    assert [r["status"] for r in reports] == ["succeeded", "failed"]
    assert "reject" in reports[1]["error"]
    with pytest.raises(tier.UsageError, match="unknown option"):
        tier.spark.load(spark, files, jobs=4)


def test_copies_of_one_task_load_once(tmp_path: Path, spark: Any, db: Db) -> None:
    # What a retried or speculative task does: the same file in two tasks at once.
    f = four_files(tmp_path)[3]
    reports = tier.spark.load(spark, [f, f], database_url=db.url)
    assert sorted(r["status"] for r in reports) == ["skipped", "succeeded"]
    assert db.count("SELECT 1 FROM track_events") == max(r["loaded"] for r in reports)
    lake = tier.spark.load(spark, [f, f], lake=tmp_path / "lake")
    assert sorted(r["status"] for r in lake) == ["skipped", "succeeded"]
    parts = sorted((tmp_path / "lake").rglob("*.parquet"))
    assert len(parts) == len(next(r for r in lake if r["status"] == "succeeded")["parts"])


def test_executors_without_tier_get_one_clear_error(tmp_path: Path) -> None:
    """A Python for the executors that cannot import tier: one UsageError saying what to do."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "tier.py").write_text("raise ModuleNotFoundError(\"No module named 'tier'\", name='tier')\n")
    python = tmp_path / "python-without-tier"
    python.write_text(f"#!/bin/sh\nPYTHONPATH={shadow} exec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    script = (
        "import os, sys\n"
        "from pyspark.sql import SparkSession\n"
        "import tier, tier.spark\n"
        "s = SparkSession.builder.master('local[1]').config('spark.ui.enabled', 'false')"
        ".config('spark.driver.host', '127.0.0.1').getOrCreate()\n"
        "s.sparkContext.setLogLevel('OFF')\n"
        "try:\n"
        "    tier.spark.load(s, [sys.argv[1]], lake=sys.argv[2])\n"
        "except tier.UsageError as e:\n"
        "    print('USAGE:', e)\n"
    )
    data = generate(tmp_path / "weather.json", "weather", 5, 1)
    env = dict(os.environ, PYSPARK_PYTHON=str(python), SPARK_LOCAL_IP="127.0.0.1")
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    out = subprocess.run(
        [sys.executable, "-c", script, str(data), str(tmp_path / "lake")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert "USAGE: the Spark executors cannot import tier" in out.stdout, out.stdout + out.stderr
    assert "PYSPARK_PYTHON" in out.stdout
    assert not (tmp_path / "lake").exists()
