"""Fixtures: a fresh database per test on the test server, and the `tier` binary."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Iterator
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


@pytest.fixture
def db() -> Iterator[Db]:
    base = os.environ.get("TIER_TEST_DATABASE_URL")
    if not base:
        pytest.skip("TIER_TEST_DATABASE_URL is not set (scripts/test.sh sets it)")
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
