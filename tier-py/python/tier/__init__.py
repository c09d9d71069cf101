"""tier: load JSON exports of event streams into typed PostgreSQL tables.

Every record is accounted for: loaded, counted as a duplicate, or stored with its reason in a
rejects table. The work is done by the same Rust core as the ``tier`` command line.
"""

from tier._errors import (
    DatabaseError,
    DefinitionError,
    EmbeddedError,
    InputError,
    InputNotFoundError,
    ParseError,
    QualityGateError,
    TierError,
    UnknownDatasetError,
    UsageError,
)
from tier._tier import (
    Reader,
    RejectStream,
    Report,
    RowIterator,
    __version__,
    check,
    expand,
    infer,
    load,
    read,
    read_rejects,
    read_rows,
    schema,
)

__all__ = [
    "DatabaseError",
    "DefinitionError",
    "EmbeddedError",
    "InputError",
    "InputNotFoundError",
    "ParseError",
    "QualityGateError",
    "Reader",
    "RejectStream",
    "Report",
    "RowIterator",
    "TierError",
    "UnknownDatasetError",
    "UsageError",
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
