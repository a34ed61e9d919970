"""Value rules the config checks share (``models.checks``, ``data.checks``, ``training.checks``, ...).

Each failure is one :class:`UsageError` line naming ``KEY=VALUE`` and what is allowed. Torch-free,
like every check, so bad input is answered before torch is imported.
"""

from __future__ import annotations

import math

from mila_bench.errors import UsageError


def integer(key: str, value: object, minimum: int) -> int:
    """``value`` if it is an integer >= ``minimum`` (a boolean is not)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{key}={value!r} is not allowed; expected an integer >= {minimum}")
    return value


def flag(key: str, value: object) -> bool:
    """``value`` if it is true or false."""
    if not isinstance(value, bool):
        raise UsageError(f"{key}={value!r} is not allowed; expected true or false")
    return value


def is_finite_number(value: object) -> bool:
    """The one rule for a number in a config: an int or float (not a bool), neither nan nor inf."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def finite(key: str, value: object, minimum: float = 0.0, exclusive: bool = False) -> float:
    """``value`` if it is a finite number >= ``minimum`` (> with ``exclusive``)."""
    if not is_finite_number(value) or (value <= minimum if exclusive else value < minimum):
        bound = f"> {minimum:g}" if exclusive else f">= {minimum:g}"
        raise UsageError(f"{key}={value!r} is not allowed; expected a finite number {bound}")
    return float(value)
