"""Ranged values for thresholds: ``"200-299, 304"``, ``"2000+"``, ``"0.5-1.5"``.

Items are separated by commas; each is ``N`` (exactly N), ``A-B`` (A to B inclusive)
or ``A+`` (A or more). Numbers may be negative and may have decimals.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = ["RangeSet", "parse_ranges"]

_NUM = r"-?\d+(?:\.\d+)?"
_ITEM = re.compile(rf"^(?P<lo>{_NUM})(?:\s*(?P<plus>\+)|\s*-\s*(?P<hi>{_NUM}))?$")


@dataclass(frozen=True, slots=True)
class RangeSet:
    """A union of closed intervals; ``text`` is the canonical written form."""

    intervals: tuple[tuple[float, float], ...]
    text: str

    def __contains__(self, value: float) -> bool:
        return any(lo <= value <= hi for lo, hi in self.intervals)

    def __str__(self) -> str:
        return self.text


def _fmt(x: float) -> str:
    # Positional notation, never ``1e-05``: the canonical text must parse back.
    return str(int(x)) if x.is_integer() else f"{Decimal(repr(x)):f}"


def _number(value: int | float | str, item: object) -> float:
    try:
        x = float(value)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x):
        raise ValueError(f"range item {item!r} is not a finite number")
    return x


def _interval(item: str) -> tuple[float, float]:
    m = _ITEM.match(item)
    if m is None:
        raise ValueError(f"range item {item!r} is not N, A-B or A+ (e.g. '200-299, 304')")
    lo = _number(m["lo"], item)
    if m["plus"]:
        return lo, math.inf
    hi = _number(m["hi"], item) if m["hi"] is not None else lo
    if hi < lo:
        raise ValueError(f"range item {item!r} runs backwards ({_fmt(lo)} > {_fmt(hi)})")
    return lo, hi


def parse_ranges(value: Any) -> RangeSet:
    """Parse a ranged value from config (a string, a number or a list of either).

    Raises ValueError naming the item that is not a number, ``A-B`` or ``A+``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str | list):
        raise ValueError(f"expected a ranged value such as '200-299, 304', got {value!r}")
    intervals: list[tuple[float, float]] = []
    for part in value if isinstance(value, list) else [value]:
        if isinstance(part, bool) or not isinstance(part, int | float | str):
            raise ValueError(f"range item {part!r} is not a number or a string")
        if isinstance(part, str):
            intervals.extend(_interval(item.strip()) for item in part.split(","))
        else:
            # A YAML number is taken as it is: str(1e-05) would not parse as an item.
            x = _number(part, part)
            intervals.append((x, x))
    if not intervals:
        raise ValueError("empty range")
    texts = [
        f"{_fmt(lo)}+" if hi == math.inf else _fmt(lo) if lo == hi else f"{_fmt(lo)}-{_fmt(hi)}"
        for lo, hi in intervals
    ]
    return RangeSet(tuple(intervals), ", ".join(texts))
