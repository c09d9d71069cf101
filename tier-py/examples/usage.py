"""A small, typed use of the tier API (checked with mypy --strict)."""

from __future__ import annotations

from pathlib import Path

import tier


def load_exports(folder: Path, database_url: str | None = None) -> dict[str, int]:
    """Loads every export of a folder; returns the rows loaded per file."""
    loaded: dict[str, int] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            report: tier.Report = tier.load(path, database_url=database_url, max_reject_ratio=0.05)
        except tier.QualityGateError as e:
            print(f"{path}: too many rejects: {e}")
            continue
        loaded[report.path] = report.loaded
    return loaded


def cities(path: Path) -> set[str]:
    """The cities of a weather export."""
    return {str(row["city"]) for row in tier.read(path, dataset="weather")}


if __name__ == "__main__":
    print(tier.check(Path("data/weather.json")).to_dict())
    print(sorted(cities(Path("data/weather.json"))))
