"""tier: load JSON exports of event streams into typed PostgreSQL tables.

Every record is accounted for: loaded, counted as a duplicate, or stored with its reason in a
rejects table. The work is done by the same Rust core as the ``tier`` command line.
"""

from tier._errors import (
    DatabaseError,
    InputError,
    InputNotFoundError,
    ParseError,
    QualityGateError,
    TierError,
    UsageError,
)
from tier._tier import Report, RowIterator, check, infer, load, read, schema

__all__ = [
    "DatabaseError",
    "InputError",
    "InputNotFoundError",
    "ParseError",
    "QualityGateError",
    "Report",
    "RowIterator",
    "TierError",
    "UsageError",
    "check",
    "infer",
    "load",
    "read",
    "schema",
]
