"""The Docker deployment files: they cannot run here (no Docker engine), so check their shape."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_parses_and_wires_the_loader_to_postgres() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "loader", "watch"}
    assert "healthcheck" in services["postgres"]
    loader = services["loader"]
    assert loader["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert loader["environment"]["PGHOST"] == "postgres"
    assert loader["build"]["dockerfile"] == "docker/Dockerfile"
    assert (ROOT / loader["build"]["dockerfile"]).is_file()
    assert any(v.endswith(":/work/data") for v in loader["volumes"])


def test_compose_watch_service_watches_the_inbox_with_metrics_and_health() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "docker-compose.yml").read_text())
    watch = compose["services"]["watch"]
    assert watch["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert watch["command"][:2] == ["watch", "data/inbox"]
    assert "--metrics-addr" in watch["command"]
    assert any(v.endswith(":/work/data/inbox") for v in watch["volumes"])
    assert (ROOT / "data" / "inbox").is_dir()
    assert "/healthz" in " ".join(watch["healthcheck"]["test"])
    assert watch["stop_signal"] == "SIGTERM"


def test_dockerfile_builds_tier_in_two_stages() -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert text.count("FROM ") == 2
    # The shipping profile: no debug information, stripped, whole-program optimised.
    assert "cargo build --profile dist --locked --bin tier" in text
    assert "target/dist/tier" in text
    cargo = (ROOT / "Cargo.toml").read_text()
    dist = cargo.split("[profile.dist]")[1].split("\n[")[0]
    assert 'strip = true' in dist and 'lto = "fat"' in dist and "debug = 0" in dist
    assert 'ENTRYPOINT ["tier"]' in text


def test_dockerignore_keeps_the_context_small() -> None:
    lines = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", "target", ".venv", ".tier", "bench-out"} <= lines
