"""Ranged values: text -> RangeSet, membership, canonical text."""

from __future__ import annotations

import math
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymon.ranges import parse_ranges

# A written number: an integer or a decimal with up to 4 places, maybe negative.
numbers = st.decimals(
    min_value=Decimal(-1_000_000), max_value=Decimal(1_000_000), places=4, allow_nan=False
).map(lambda d: f"{d.normalize():f}")
# One interval as written, with its bounds: "N", "A-B" or "A+".
Item = tuple[str, float, float]


@st.composite
def items(draw: st.DrawFn) -> Item:
    lo = draw(numbers)
    kind = draw(st.sampled_from(["point", "span", "plus"]))
    if kind == "point":
        return lo, float(lo), float(lo)
    if kind == "plus":
        return f"{lo}{draw(st.sampled_from(['+', ' +']))}", float(lo), math.inf
    hi = draw(numbers)
    lo, hi = sorted((lo, hi), key=float)
    dash = draw(st.sampled_from(["-", " - ", "- ", " -"]))
    return f"{lo}{dash}{hi}", float(lo), float(hi)


range_texts = st.lists(items(), min_size=1, max_size=6)


def render(parts: list[Item], sep: str) -> str:
    return sep.join(text for text, _, _ in parts)


def contains(parts: list[Item], value: float) -> bool:
    return any(lo <= value <= hi for _, lo, hi in parts)


@given(parts=range_texts, sep=st.sampled_from([",", ", ", " , "]), data=st.data())
def test_membership_agrees_with_the_intervals_written(
    parts: list[Item], sep: str, data: st.DataObject
) -> None:
    ranges = parse_ranges(render(parts, sep))
    bounds = [b for _, lo, hi in parts for b in (lo, hi) if math.isfinite(b)]
    # Values right at, just inside and just outside the bounds, and anywhere.
    near = st.sampled_from(bounds).flatmap(
        lambda b: st.sampled_from([b, math.nextafter(b, -math.inf), math.nextafter(b, math.inf)])
    )
    anywhere = st.floats(min_value=-2e6, max_value=2e6)
    for _ in range(20):
        value = data.draw(st.one_of(near, anywhere))
        assert (value in ranges) is contains(parts, value)


@given(parts=range_texts)
def test_canonical_text_parses_back_to_the_same_ranges(parts: list[Item]) -> None:
    ranges = parse_ranges(render(parts, ","))
    again = parse_ranges(ranges.text)
    assert again == ranges
    assert str(again) == ranges.text


@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_any_finite_yaml_number_round_trips_through_its_text(value: float) -> None:
    # 1e-05 must not be written as "1e-05", which is no range item.
    ranges = parse_ranges(value)
    assert ranges.intervals == ((value, value),)
    assert parse_ranges(ranges.text).intervals == ((value, value),)


@given(lo=numbers, value=st.floats(allow_nan=False))
def test_a_plus_means_a_or_more(lo: str, value: float) -> None:
    assert (value in parse_ranges(f"{lo}+")) is (value >= float(lo))


@given(text=st.text(max_size=30))
def test_any_text_either_parses_or_says_why(text: str) -> None:
    try:
        ranges = parse_ranges(text)
    except ValueError:
        return  # refusing with a ValueError is the one other allowed outcome
    assert parse_ranges(ranges.text) == ranges


@pytest.mark.parametrize(
    ("value", "text", "intervals"),
    [
        ("200-299, 304", "200-299, 304", ((200, 299), (304, 304))),
        ("2000+", "2000+", ((2000, math.inf),)),
        ("0.5-1.5", "0.5-1.5", ((0.5, 1.5),)),
        ("-10--5", "-10--5", ((-10, -5),)),
        ("-3 - 3", "-3-3", ((-3, 3),)),
        ("4.01-74.99", "4.01-74.99", ((4.01, 74.99),)),
        ("0.00001", "0.00001", ((1e-05, 1e-05),)),
        (404, "404", ((404, 404),)),
        (99.5, "99.5", ((99.5, 99.5),)),
        ([200, "300-399", "500+"], "200, 300-399, 500+", ((200, 200), (300, 399), (500, math.inf))),
        (["200, 204"], "200, 204", ((200, 200), (204, 204))),
    ],
)
def test_written_forms(
    value: object, text: str, intervals: tuple[tuple[float, float], ...]
) -> None:
    ranges = parse_ranges(value)
    assert ranges.text == text
    assert ranges.intervals == intervals


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("200-1x9", "range item '200-1x9' is not N, A-B or A+ (e.g. '200-299, 304')"),
        ("300-200", "range item '300-200' runs backwards (300 > 200)"),
        ("200,", "range item '' is not N, A-B or A+ (e.g. '200-299, 304')"),
        ("1e5", "range item '1e5' is not N, A-B or A+ (e.g. '200-299, 304')"),
        ([], "empty range"),
        (True, "expected a ranged value such as '200-299, 304', got True"),
        ({"a": 1}, "expected a ranged value such as '200-299, 304', got {'a': 1}"),
        ([None], "range item None is not a number or a string"),
        (math.nan, "range item nan is not a finite number"),
        ("9" * 400 + "+", f"range item '{'9' * 400}+' is not a finite number"),
    ],
)
def test_bad_ranges_say_what_is_wrong(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_ranges(value)
