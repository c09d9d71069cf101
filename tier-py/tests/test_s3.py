"""Object storage: s3:// inputs and lakes against a local S3-compatible server (moto_server)."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

import tier
from conftest import S3, TIER_BIN, Db, free_port, generate


def fingerprint(db: Db, table: str, schema: str) -> str:
    """Rows and content of a table, lineage aside: equal for equal loads."""
    cols = db.scalar(
        "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) "
        f"FROM information_schema.columns WHERE table_schema = '{schema}' AND table_name = '{table}' "
        "AND column_name NOT IN ('_load_id', '_record_index')"
    )
    return db.scalar(
        f"SELECT count(*) || ':' || md5(string_agg(t::text, '|' ORDER BY t::text)) "
        f"FROM (SELECT {cols} FROM {schema}.{table}) t"
    )


def bucket(s3: S3) -> str:
    return s3.bucket("b-" + uuid.uuid4().hex[:10])


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TIER_BIN), *args], env={**os.environ, **env}, capture_output=True, text=True
    )


def test_load_from_s3_equals_load_from_disk(tmp_path: Path, s3: S3, db: Db) -> None:
    b = bucket(s3)
    src = tmp_path / "src"
    src.mkdir()
    generate(src / "day1.json", "track_events", 3000, 1, defects=0.05)
    generate(src / "day2.json", "track_events", 2000, 2, defects=0.05)
    with open(src / "day2.json", "rb") as f, gzip.open(tmp_path / "day2.json.gz", "wb") as g:
        shutil.copyfileobj(f, g)
    s3.put(f"s3://{b}/in/day1.json", src / "day1.json")
    s3.put(f"s3://{b}/in/sub/day2.json.gz", tmp_path / "day2.json.gz")
    s3.put(f"s3://{b}/other/ignored.json", src / "day1.json")

    disk = tier.load([src], database_url=db.url, schema="disk")
    db.scalar("CREATE SCHEMA remote")
    remote = tier.load([f"s3://{b}/in"], database_url=db.url, schema="remote")
    assert [r.path for r in remote] == [f"s3://{b}/in/day1.json", f"s3://{b}/in/sub/day2.json.gz"]
    assert [r.status for r in remote] == ["succeeded", "succeeded"]
    assert [(r.records, r.loaded, r.rejected) for r in remote] == [
        (r.records, r.loaded, r.rejected) for r in disk
    ]
    assert remote[0].sha256 == disk[0].sha256 and remote[0].bytes == disk[0].bytes
    for table in ("track_events", "track_events_rejects"):
        assert fingerprint(db, table, "remote") == fingerprint(db, table, "disk")
    # The ledger names the URL; a re-run finds the content and skips it.
    assert db.scalar("SELECT string_agg(source, ',' ORDER BY load_id) FROM remote.tier_loads") == (
        f"s3://{b}/in/day1.json,s3://{b}/in/sub/day2.json.gz"
    )
    again = tier.load(f"s3://{b}/in/day1.json", database_url=db.url, schema="remote")
    assert again.status == "skipped"
    # One object by its URL reads the same as check of the file.
    assert tier.check(f"s3://{b}/in/day1.json").loaded == tier.check(src / "day1.json").loaded
    assert tier.expand(f"s3://{b}/in/") == [f"s3://{b}/in/day1.json", f"s3://{b}/in/sub/day2.json.gz"]


def test_lake_on_s3_is_read_back_by_pyarrow(tmp_path: Path, s3: S3) -> None:
    b = bucket(s3)
    generate(tmp_path / "weather.json", "weather", 1500, 5, defects=0.05)
    lake = f"s3://{b}/lake"
    first = tier.load(tmp_path / "weather.json", lake=lake)
    assert first.status == "succeeded" and first.parts
    fs = pafs.S3FileSystem(
        access_key=s3.KEY, secret_key=s3.SECRET, endpoint_override=f"127.0.0.1:{s3.port}",
        scheme="http", region="us-east-1",
    )
    rows = ds.dataset(
        f"{b}/lake/weather", filesystem=fs, format="parquet", partitioning="hive",
        exclude_invalid_files=True,
    )
    assert rows.count_rows() == first.loaded
    rejects = ds.dataset(
        f"{b}/lake/weather_rejects", filesystem=fs, format="parquet", exclude_invalid_files=True
    )
    assert rejects.count_rows() == first.rejected
    listed = sorted(
        i.path.removeprefix(f"{b}/lake/")
        for i in fs.get_file_info(pafs.FileSelector(f"{b}/lake", recursive=True))
        if i.path.endswith(".parquet")
    )
    assert listed == sorted(first.parts)
    # The same local lake is written for the same file.
    local = tier.load(tmp_path / "weather.json", lake=tmp_path / "lake")
    assert sorted(local.parts) == sorted(first.parts)
    # Re-run: the lake's ledger on the bucket knows the content.
    assert tier.load(tmp_path / "weather.json", lake=lake).status == "skipped"
    out = run(["loads", "--lake", lake, "--report", "json"], s3.env)
    assert out.returncode == 0, out.stderr
    assert "weather.json" in out.stdout


def test_each_storage_error_is_one_line_naming_the_url(tmp_path: Path, s3: S3) -> None:
    b = bucket(s3)
    generate(tmp_path / "e.json", "track_events", 10, 1)
    s3.put(f"s3://{b}/e.json", tmp_path / "e.json")
    cases = {
        f"s3://no-such-bucket-{uuid.uuid4().hex[:6]}/e.json": ("bucket", s3.env),
        f"s3://{b}/missing.json": ("no such object", s3.env),
        f"s3://{b}/e.json": ("cannot reach", {**s3.env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}),
    }
    for url, (words, env) in cases.items():
        out = run(["check", url], env)
        assert out.returncode == 1, (url, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and url in lines[0] and words in lines[0], (url, out.stderr)
        assert S3.SECRET not in out.stderr + out.stdout and S3.KEY not in out.stderr + out.stdout
    out = run(["check", "s3://"], s3.env)
    assert out.returncode == 2 and "s3://" in out.stderr
    with pytest.raises(tier.InputNotFoundError, match="missing.json"):
        tier.check(f"s3://{b}/missing.json")


def test_denied_access_names_the_url_and_hides_the_secret(tmp_path: Path) -> None:
    pytest.importorskip("moto")
    # A server that checks credentials: the test's keys are unknown to it.
    server = S3.start({"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    try:
        out = run(["check", "s3://locked/e.json"], server.env)
        assert out.returncode == 1, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "s3://locked/e.json" in lines[0] and "denied" in lines[0], out.stderr
        assert S3.SECRET not in out.stderr and S3.KEY not in out.stderr
    finally:
        server.stop()


def test_a_large_object_streams_in_flat_memory(tmp_path: Path, s3: S3) -> None:
    b = bucket(s3)
    big = generate(tmp_path / "big.json", "track_events", 400_000, 9)
    size = big.stat().st_size
    assert size > 60 << 20
    s3.put(f"s3://{b}/big.json", big)
    # Peak memory of the tier process, measured by a parent of its own.
    probe = (
        "import resource, subprocess, sys; "
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(TIER_BIN), "check", f"s3://{b}/big.json"],
        env={**os.environ, **s3.env}, capture_output=True, text=True, check=True,
    )
    peak_kib = int(out.stdout.strip())
    assert peak_kib * 1024 < size / 2, (peak_kib, size)


def test_many_loaders_into_one_lake_on_a_bucket(tmp_path: Path, s3: S3) -> None:
    b = bucket(s3)
    lake = f"s3://{b}/lake"
    files = [generate(tmp_path / f"d{i}.json", "track_events", 400, 30 + i) for i in range(8)]
    # Four jobs in one process and two processes at once, over disjoint files.
    procs = [
        subprocess.Popen(
            [str(TIER_BIN), "-q", "load", *map(str, files[4 + 2 * i : 6 + 2 * i]), "--lake", lake],
            env={**os.environ, **s3.env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    reports = tier.load(files[:4], lake=lake, jobs=4)
    assert [r.status for r in reports] == ["succeeded"] * 4
    for p in procs:
        assert p.wait() == 0, p.stderr.read() if p.stderr else ""
    out = run(["loads", "--lake", lake, "--report", "json", "--limit", "100"], s3.env)
    assert out.returncode == 0, out.stderr
    import json

    lines = json.loads(out.stdout)
    loads = lines if isinstance(lines, list) else lines["loads"]
    assert sorted(l["source"] for l in loads) == sorted(str(f) for f in files)
    assert len({l["load_id"] for l in loads}) == 8
    # Eight writers of one Iceberg table by conditional puts: eight snapshots, none lost.
    from pyiceberg.table import StaticTable

    version = s3.client().get_object(
        Bucket=b, Key="lake/track_events/metadata/version-hint.text"
    )["Body"].read().decode().strip()
    table = StaticTable.from_metadata(
        f"{lake}/track_events/metadata/v{version}.metadata.json",
        properties={"s3.endpoint": s3.endpoint, "s3.access-key-id": S3.KEY,
                    "s3.secret-access-key": S3.SECRET, "s3.region": "us-east-1"},
    )
    assert sorted(s.summary.additional_properties["tier.source"] for s in table.snapshots()) == sorted(  # type: ignore[union-attr]
        str(f) for f in files
    )
    # Every file loaded again: all skipped, from any process.
    assert {r.status for r in tier.load(files, lake=lake, jobs=2)} == {"skipped"}
