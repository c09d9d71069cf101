"""JSON text of ``jsonb`` values and ``_extra`` to Python, numbers exactly as written."""

import decimal
import json
import math
from typing import Any, Union


def _number(text: str) -> Union[float, decimal.Decimal]:
    """A float when the float says the same number as ``text``, else an exact ``Decimal``."""
    f = float(text)
    if math.isfinite(f) and decimal.Decimal(repr(f)) == decimal.Decimal(text):
        return f
    return decimal.Decimal(text)


def loads(text: str) -> Any:
    """Parses JSON text: integers of any size as ``int``, decimals as ``float`` where a float
    holds them exactly as written (``0.1``), else as ``decimal.Decimal`` (30 digits, ``1e999``)."""
    return json.loads(text, parse_float=_number)
