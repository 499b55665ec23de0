"""Durations: ``500ms``, ``30s``, ``5m``, ``1h``, ``1h30m`` or seconds."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymon.config.load import load_config_text
from pymon.config.schema import parse_duration
from pymon.durations import MAX_DURATION
from pymon.errors import ConfigError


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
        ("3650d", 315_360_000.0),
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
        ("99999999d", "'99999999d' is longer than 3650d (ten years), the longest duration taken"),
        ("3650d1ms", "'3650d1ms' is longer than 3650d (ten years), the longest duration taken"),
        (1e300, "1e+300 is longer than 3650d (ten years), the longest duration taken"),
        (True, "expected a duration such as 30s, 5m or 1h, not a boolean"),
        (None, "expected a duration such as 30s, got None"),
        ([1], "expected a duration such as 30s, got [1]"),
    ],
)
def test_bad_durations_say_what_is_wrong(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_duration(value)


UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}


@given(parts=st.dictionaries(st.sampled_from(list(UNITS)), st.integers(0, 900), min_size=1))
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
    assert 0 <= seconds <= MAX_DURATION


def test_the_longest_duration_fits_a_date_from_any_time_before_year_9989() -> None:
    far = datetime(9989, 12, 31, tzinfo=UTC).timestamp()
    assert datetime.fromtimestamp(far + parse_duration("3650d"), UTC).year == 9999


def test_a_config_with_a_duration_beyond_the_bound_names_the_key_and_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(
            "services:\n  - {name: web, type: tcp, host: 127.0.0.1, port: 1, interval: 99999999d}\n"
        )
    assert str(info.value) == (
        "<string>:2: services[0].interval: "
        "'99999999d' is longer than 3650d (ten years), the longest duration taken"
    )
