"""The exceptions of tier: every error of the core maps to one of them."""


class TierError(Exception):
    """Base class of every tier error."""


class ParseError(TierError):
    """An input could not be read as an export (unreadable gzip, unknown dataset)."""


class DatabaseError(TierError):
    """The database refused a connection or a statement, or a table is incompatible."""


class QualityGateError(TierError):
    """More records were rejected than ``max_reject_ratio`` allows; the load was rolled back.

    The rolled-back load's report is in ``report``.
    """

    report: object


class UsageError(TierError, ValueError):
    """An argument that cannot work (unknown dataset name, bad ratio, a directory...)."""


class InputError(TierError, OSError):
    """An input could not be opened or read."""


class InputNotFoundError(InputError, FileNotFoundError):
    """An input does not exist."""
