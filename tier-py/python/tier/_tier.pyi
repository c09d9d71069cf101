import datetime
import decimal
import os
from typing import Any, Optional, Sequence, Union, final, overload

__all__ = [
    "Reader",
    "RejectStream",
    "Report",
    "RowIterator",
    "__version__",
    "check",
    "expand",
    "infer",
    "load",
    "read",
    "read_rejects",
    "read_rows",
    "schema",
]

__version__: str

_Path = Union[str, "os.PathLike[str]"]
_Paths = Union[_Path, Sequence[_Path]]
_Value = Union[str, float, int, bool, decimal.Decimal, datetime.datetime, datetime.date, dict[str, Any], list[Any], None]

@final
class Report:
    """The outcome of loading or checking one file."""

    @property
    def path(self) -> str: ...
    @property
    def dataset(self) -> str: ...
    @property
    def table(self) -> Optional[str]: ...
    @property
    def sha256(self) -> str: ...
    @property
    def bytes(self) -> int: ...
    @property
    def records(self) -> int: ...
    @property
    def loaded(self) -> int: ...
    @property
    def rolled_back(self) -> int:
        """Rows that would have loaded, when the quality gate rolled the load back."""
    @property
    def duplicates(self) -> int: ...
    @property
    def rejected(self) -> int: ...
    @property
    def reject_reasons(self) -> dict[str, int]: ...
    @property
    def unknown_fields(self) -> dict[str, int]: ...
    @property
    def added_columns(self) -> list[str]:
        """Columns this load added to the table (additive schema evolution)."""
    @property
    def parts(self) -> list[str]:
        """The Parquet parts written, relative to the lake (lake loads)."""
    @property
    def status(self) -> str: ...
    @property
    def load_id(self) -> Optional[int]: ...
    @property
    def seconds(self) -> float: ...
    @property
    def json(self) -> str:
        """The report as JSON text."""
    def to_dict(self) -> dict[str, Any]: ...

@final
class Reader:
    """The valid rows of a file: iterating yields dicts (once); each Arrow consumer reads the
    file anew."""

    def __iter__(self) -> "Reader": ...
    def __next__(self) -> dict[str, _Value]: ...
    def __arrow_c_stream__(self, requested_schema: Optional[object] = None) -> object:
        """The Arrow PyCapsule stream interface."""
    def rejects(self) -> RejectStream:
        """The rejects of the same file."""

@final
class RejectStream:
    """The rejects of a file as Arrow record batches."""

    def __arrow_c_stream__(self, requested_schema: Optional[object] = None) -> object:
        """The Arrow PyCapsule stream interface."""

@final
class RowIterator:
    """The valid rows of a file, one dict at a time.

    Values are typed per the definition: ``str``, ``int``, ``float``, ``bool``, UTC-aware
    ``datetime.datetime``, ``datetime.date``; ``jsonb`` columns and ``_extra`` are parsed JSON
    in which integers of any size are exact ``int`` and a decimal number is a ``float`` where a
    float holds it exactly as written, else an exact ``decimal.Decimal``
    (``3.141592653589793238462643383279``, ``1e999``)."""

    def __iter__(self) -> "RowIterator": ...
    def __next__(self) -> dict[str, _Value]: ...

@overload
def load(  # type: ignore[overload-overlap]  # a str is a Sequence[str] too; the first wins
    paths: _Path,
    database_url: Optional[str] = None,
    dataset: Optional[str] = None,
    schema: str = "public",
    force: bool = False,
    replace: bool = False,
    max_reject_ratio: Optional[float] = None,
    datasets: Optional[_Paths] = None,
    lake: Optional[_Path] = None,
    jobs: int = 1,
    catalog_url: Optional[str] = None,
) -> Report:
    """Loads a file into PostgreSQL, or into the lake at ``lake`` (Iceberg tables of Parquet
    files; ``catalog_url`` keeps their SQL catalog and the lake's ledger in that database). A path to a
    directory loads its files and returns a ``list[Report]`` (pass a list for typed code).
    ``datasets`` names definition files or directories (added to ``$TIER_DATASETS`` and the
    built-ins). The first failure raises, with the reports of the files that loaded in its
    ``reports`` attribute."""
@overload
def load(
    paths: Sequence[_Path],
    database_url: Optional[str] = None,
    dataset: Optional[str] = None,
    schema: str = "public",
    force: bool = False,
    replace: bool = False,
    max_reject_ratio: Optional[float] = None,
    datasets: Optional[_Paths] = None,
    lake: Optional[_Path] = None,
    jobs: int = 1,
    catalog_url: Optional[str] = None,
) -> list[Report]:
    """Loads files and directories' files, ``jobs`` at once: one report per file, in order."""
@overload
def check(  # type: ignore[overload-overlap]
    paths: _Path,
    dataset: Optional[str] = None,
    datasets: Optional[_Paths] = None,
    jobs: int = 1,
    max_reject_ratio: Optional[float] = None,
) -> Report: ...
@overload
def check(
    paths: Sequence[_Path],
    dataset: Optional[str] = None,
    datasets: Optional[_Paths] = None,
    jobs: int = 1,
    max_reject_ratio: Optional[float] = None,
) -> list[Report]: ...
def read(
    path: _Path, dataset: Optional[str] = None, datasets: Optional[_Paths] = None, batch_size: int = 65536
) -> Reader:
    """The valid rows of a file: ``pyarrow.table(r)``, ``polars.DataFrame(r)`` or DuckDB read it
    as typed Arrow record batches (``_extra`` as JSON text); iterating yields dicts."""
def read_rows(path: _Path, dataset: Optional[str] = None, datasets: Optional[_Paths] = None) -> RowIterator:
    """The valid rows of a file as dicts, one at a time."""
def read_rejects(
    path: _Path, dataset: Optional[str] = None, datasets: Optional[_Paths] = None, batch_size: int = 65536
) -> RejectStream:
    """The rejects of a file as Arrow record batches: ``_record_index``, ``reason``, ``raw``."""
def schema(dataset: Optional[str] = None, schema: str = "public", datasets: Optional[_Paths] = None) -> str: ...
def expand(paths: _Paths) -> list[str]:
    """The files ``load`` and ``check`` read for ``paths``, in order: directories and ``s3://``
    prefixes expanded."""
def infer(path: _Path, name: Optional[str] = None, sample: int = 10000) -> str:
    """Reads up to ``sample`` records of a file and proposes a dataset definition (TOML)."""
