"""The chart's value axis in Python: titles from metric names, round ticks. The same
table runs against ``static/axis.js`` in the browser suite."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymon.web.pages.axis import axis_title, metric_label, ticks
from tests.web.axis_cases import TICKS, TITLES


@pytest.mark.parametrize(("name", "title"), TITLES)
def test_axis_title(name: str, title: str) -> None:
    assert axis_title(name) == title


def test_metric_label_splits_the_unit_off() -> None:
    assert metric_label("response_time_ms") == ("response time", "ms")
    assert metric_label("cert_days_left") == ("certificate days left", "days")
    assert metric_label("entries") == ("entries", "")


@pytest.mark.parametrize(("low", "high", "labels"), TICKS)
def test_tick_labels(low: float, high: float, labels: list[str]) -> None:
    assert ticks(low, high).labels() == labels


@given(
    st.floats(-1e9, 1e9, allow_nan=False),
    st.floats(0, 1e9, allow_nan=False),
)
def test_ticks_are_round_few_and_cover_the_range(low: float, width: float) -> None:
    high = low + width
    found = ticks(low, high)
    slack = 1e-6 * found.step
    assert found.values[0] <= low + slack and found.values[-1] >= high - slack
    assert 2 <= len(found.values) <= 7
    mantissa = found.step / 10 ** math.floor(math.log10(found.step) + 1e-9)
    assert round(mantissa, 6) in (1.0, 2.0, 5.0)
    scale = max(abs(found.values[0]), abs(found.values[-1]))
    for a, b in itertools.pairwise(found.values):
        assert abs(b - a - found.step) <= 1e-9 * scale


def test_ticks_bear_odd_input() -> None:
    assert ticks(math.nan, math.inf).labels() == ticks(0, 0).labels()
    assert ticks(10, 0).labels() == ticks(0, 10).labels()
