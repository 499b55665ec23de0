"""Durations: ``500ms``, ``30s``, ``5m``, ``1h``, ``1h30m`` or seconds."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymon.config.schema import parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("1m30s500ms", 90.5),
        ("1.5s", 1.5),
        (" 2 m ", 120.0),
        ("10", 10.0),
        ("0.25", 0.25),
        ("0s", 0.0),
        (45, 45.0),
        (2.5, 2.5),
    ],
)
def test_written_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "'abc' is not a duration (use e.g. 500ms, 30s, 5m, 1h, 1h30m)"),
        ("5x", "'5x' is not a duration (use e.g. 500ms, 30s, 5m, 1h, 1h30m)"),
        ("5M", "'5M' is not a duration (use e.g. 500ms, 30s, 5m, 1h, 1h30m)"),
        ("", "'' is not a duration (use e.g. 500ms, 30s, 5m, 1h, 1h30m)"),
        ("-5s", "'-5s' is not a duration (use e.g. 500ms, 30s, 5m, 1h, 1h30m)"),
        (-5, "a duration cannot be negative"),
        ("inf", "'inf' is not a finite duration"),
        ("nan", "'nan' is not a finite duration"),
        (10**400, f"{10**400!r} is not a finite duration"),
        (True, "expected a duration such as 30s, 5m or 1h, not a boolean"),
        (None, "expected a duration such as 30s, got None"),
        ([1], "expected a duration such as 30s, got [1]"),
    ],
)
def test_bad_durations_say_what_is_wrong(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_duration(value)


UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}


@given(parts=st.dictionaries(st.sampled_from(list(UNITS)), st.integers(0, 10_000), min_size=1))
def test_compound_durations_add_up(parts: dict[str, int]) -> None:
    text = "".join(f"{n}{unit}" for unit, n in sorted(parts.items(), key=lambda p: -UNITS[p[0]]))
    assert parse_duration(text) == pytest.approx(sum(n * UNITS[u] for u, n in parts.items()))


@given(text=st.text(max_size=20))
def test_any_text_is_a_finite_duration_or_says_why(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError:
        return  # refusing with a ValueError is the one other allowed outcome
    assert math.isfinite(seconds)
    assert seconds >= 0
