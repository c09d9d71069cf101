"""Loads spread over Spark executors: one Spark task per file, each calling the same core.

The driver expands ``paths`` (local paths, a shared filesystem or ``s3://`` prefixes) into files;
every task imports ``tier`` and loads its one file. A retried task or a speculative copy finds its
file's sha256 in the ledger and reports ``skipped``, so rows are loaded exactly once.

``pyspark`` is an optional dependency: ``pip install ./tier-py[spark]``. The executors' Python
must import ``tier`` too: in local mode, set ``PYSPARK_PYTHON`` to the Python that has it
(``sys.executable``); on a cluster, ship a packed environment (``venv-pack`` or ``conda-pack``)
with ``--archives`` (``spark.archives``) and point ``PYSPARK_PYTHON`` into it. One tiny task
checks this first, so a job does not die deep inside Spark with ``ModuleNotFoundError``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence, Union

from tier import _tier
from tier._errors import TierError, UsageError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["load"]

_Path = Union[str, "os.PathLike[str]"]

_OPTIONS = frozenset(
    {"database_url", "dataset", "schema", "force", "replace", "max_reject_ratio", "datasets", "lake"}
)


def load(spark: SparkSession, paths: Union[_Path, Sequence[_Path]], **options: Any) -> list[dict[str, Any]]:
    """Loads every file of ``paths`` in one Spark task per file and returns each file's report
    dict, in the order of the files.

    ``options`` are those of :func:`tier.load` (``database_url``, ``dataset``, ``schema``,
    ``force``, ``replace``, ``max_reject_ratio``, ``datasets``, ``lake``). The executors cannot
    share an embedded database, so the target is ``lake=`` or a server: ``database_url=`` or
    ``$DATABASE_URL`` on the driver, as everywhere in tier. Local paths (inputs, ``datasets``, a lake) must be
    reachable by every executor under the same name: a shared filesystem, or ``s3://``.

    A file whose load fails on its data (the quality gate, an unreadable input) comes back as its
    report with ``status`` ``failed`` and the message in ``error``; any other error (the server
    refuses connections, a bad option) fails the task, and after Spark's retries, the job.
    """
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise UsageError(f"tier.spark.load got unknown option(s): {', '.join(unknown)}")
    if options.get("lake") is None and options.get("database_url") is None:
        url = os.environ.get("DATABASE_URL")
        if not url:
            raise UsageError(
                "tier.spark.load needs database_url= (or $DATABASE_URL) or lake=: "
                "executors cannot share the embedded database"
            )
        options["database_url"] = url
    for name in ("lake", "datasets"):
        if options.get(name) is not None:
            options[name] = _absolute(options[name])
    files = [_absolute(f) for f in _tier.expand(paths)]
    if not files:
        return []
    _probe(spark)
    tasks = spark.sparkContext.parallelize(list(enumerate(files)), len(files))
    done = tasks.map(lambda task: (task[0], _load_one(task[1], options))).collect()
    return [report for _, report in sorted(done, key=lambda d: d[0])]


_NO_TIER = (
    "the Spark executors cannot import tier: in local mode, set PYSPARK_PYTHON to the Python "
    "that has it (sys.executable) before the session starts; on a cluster, ship a packed "
    "environment (venv-pack or conda-pack) with --archives (spark.archives) and point "
    "PYSPARK_PYTHON into it"
)


def _probe(spark: SparkSession) -> None:
    """One tiny task that imports tier where the loads will run."""
    try:
        spark.sparkContext.parallelize([0], 1).map(_version).collect()
    except Exception as e:
        if "No module named 'tier'" in str(e):
            raise UsageError(_NO_TIER) from None
        raise


def _version(_: Any) -> str:
    import tier

    return str(tier.__version__)


def _absolute(path: Any) -> Any:
    """A path as the executors will see it: absolute (URLs and lists kept as they are)."""
    if isinstance(path, (list, tuple)):
        return [_absolute(p) for p in path]
    text = os.fspath(path)
    return text if text.startswith("s3://") else os.path.abspath(text)


def _load_one(path: str, options: dict[str, Any]) -> dict[str, Any]:
    """One task: loads one file and returns its report dict."""
    import tier

    try:
        report = tier.load([path], **options)[0]
    except TierError as e:
        if e.report is None:
            raise
        failed: dict[str, Any] = e.report.to_dict()  # type: ignore[attr-defined]
        failed["error"] = str(e)
        return failed
    result: dict[str, Any] = report.to_dict()
    return result
