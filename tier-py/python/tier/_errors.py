"""The exceptions of tier: every error of the core maps to one of them."""


from typing import Optional


class TierError(Exception):
    """Base class of every tier error. ``sqlstate`` is the server's SQLSTATE for database
    errors, else ``None``; a failed load carries its report (status ``failed``) in ``report``."""

    sqlstate: Optional[str] = None
    report: object = None


class ParseError(TierError):
    """An input could not be read as an export (unreadable gzip, unknown dataset)."""


class DatabaseError(TierError):
    """The database refused a connection or a statement, or a table is incompatible."""


class EmbeddedError(DatabaseError):
    """The embedded PostgreSQL could not be created, started or stopped."""


class QualityGateError(TierError):
    """More records were rejected than ``max_reject_ratio`` allows; the load was rolled back.

    The rolled-back load's report is in ``report``.
    """


class UsageError(TierError, ValueError):
    """An argument that cannot work (unknown dataset name, bad ratio, a directory...)."""


class DefinitionError(UsageError):
    """A dataset definition that cannot be read or is invalid (the message names file and line)."""


class UnknownDatasetError(UsageError, ParseError):
    """A file whose dataset cannot be told from its keys or its name: name it with ``dataset=``."""


class InputError(TierError, OSError):
    """An input could not be opened or read."""


class InputNotFoundError(InputError, FileNotFoundError):
    """An input does not exist."""
