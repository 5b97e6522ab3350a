"""Small value checks shared by every config validator; each appends one readable line per problem."""

from __future__ import annotations

import math
from typing import Any


def is_int(value: Any) -> bool:
    """An int that is not a bool (YAML's true/false are bools)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float that is not a bool (``nan`` passes every ``<=`` test, so it is refused here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def int_at_least(problems: list[str], key: str, value: Any, low: int, hint: str = "") -> None:
    """Append a problem unless ``value`` is an integer >= ``low`` (``hint``: e.g. ``" or null"``)."""
    if not is_int(value) or value < low:
        problems.append(f"{key}={value!r} is invalid: it must be an integer >= {low}{hint}")


def number_in(problems: list[str], key: str, value: Any, low: float, high: float, low_open: bool = False, high_open: bool = False) -> None:
    """Append a problem unless ``low <= value <= high`` (with open ends where asked)."""
    ok = is_number(value) and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        problems.append(f"{key}={value!r} is invalid: it must be a number in {lo}{low}, {high}{hi}")
