"""Fixtures: a fresh database per test on the test server, and the `tier` binary."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIER_BIN = ROOT / "target" / "debug" / "tier"


class Db:
    """A database of its own on the test server, queried through psql."""

    def __init__(self, url: str) -> None:
        self.url = url

    def scalar(self, sql: str) -> str:
        out = subprocess.run(
            ["psql", self.url, "-XtAc", sql], check=True, capture_output=True, text=True
        )
        return out.stdout.strip()

    def count(self, sql: str) -> int:
        return int(self.scalar(f"SELECT count(*) FROM ({sql}) q"))


def missing(what: str) -> None:
    """A prerequisite is missing: skip when run by hand, fail under scripts/test.sh
    (``TIER_TEST_STRICT``), which provides every prerequisite — no silent pass."""
    if os.environ.get("TIER_TEST_STRICT"):
        pytest.fail(f"{what} is missing, and scripts/test.sh provides it")
    pytest.skip(f"{what} is missing (scripts/test.sh provides it)")


@pytest.fixture
def db() -> Iterator[Db]:
    base = os.environ.get("TIER_TEST_DATABASE_URL")
    if not base:
        missing("TIER_TEST_DATABASE_URL (the test server)")
    name = "py_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", base, "-Xqc", f"CREATE DATABASE {name}"], check=True)
    parts = urlsplit(base)
    yield Db(urlunsplit(parts._replace(path="/" + name)))


def generate(path: Path, dataset: str, records: int, seed: int, defects: float = 0.0) -> Path:
    subprocess.run(
        [str(TIER_BIN), "generate", dataset, "--records", str(records), "--seed", str(seed),
         "--defect-rate", str(defects), "-o", str(path)],
        check=True,
    )
    return path


@pytest.fixture
def sample() -> Path:
    return ROOT / "data"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class S3:
    """An S3-compatible server of its own on 127.0.0.1 (moto_server), and its credentials."""

    KEY = "tier-test-key-id"
    SECRET = "tier-test-secret-do-not-print"

    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc = proc
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.env = {
            "AWS_ACCESS_KEY_ID": self.KEY,
            "AWS_SECRET_ACCESS_KEY": self.SECRET,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.KEY,
            aws_secret_access_key=self.SECRET, region_name="us-east-1",
        )

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def put(self, url: str, path: Path) -> str:
        bucket, _, key = url.removeprefix("s3://").partition("/")
        self.client().upload_file(str(path), bucket, key)
        return url

    @staticmethod
    def start(extra_env: dict[str, str] | None = None) -> "S3":
        import shutil
        import sys
        import time
        import urllib.request

        exe = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
        port = free_port()
        env = {**os.environ, **(extra_env or {})}
        proc = subprocess.Popen(
            [exe, "-H", "127.0.0.1", "-p", str(port)], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise RuntimeError("moto_server did not start")
                time.sleep(0.1)
        return S3(proc, port)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3]:
    try:
        import moto  # noqa: F401
    except ImportError:
        missing("moto (the S3 server)")
    server = S3.start()
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server: S3, monkeypatch: pytest.MonkeyPatch) -> S3:
    """The test S3 server, with the standard variables pointing at it for this test."""
    for k, v in s3_server.env.items():
        monkeypatch.setenv(k, v)
    return s3_server
