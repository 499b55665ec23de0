"""``pymon.text.one_line``: hostile text on one line, cut where asked."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pymon.text
from pymon.text import one_line, spans


@pytest.mark.parametrize(
    ("text", "flat"),
    [
        ("", ""),
        ("  plain  ", "plain"),
        ("two\r\nlines", "two lines"),
        ("tab\tand\vform\ffeed", "tab and form feed"),
        ("nul\x00esc\x1b[2Jdel\x7f", "nul esc [2Jdel"),
        ("line\u2028para\u2029sep\x85next", "line para sep next"),
        ("bidi \u202egnp.exe", "bidi gnp.exe"),
        ("zero\u200bwidth", "zero width"),
        ("private \ue000 use", "private use"),
        ("non\u00a0breaking", "non breaking"),
        ("café ✓ 日本", "café ✓ 日本"),
    ],
)
def test_every_unprintable_character_and_white_space_run_is_one_space(text: str, flat: str) -> None:
    assert one_line(text) == flat


def test_blank_names_the_categories_made_spaces() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # joined by ZERO WIDTH JOINERs
    assert one_line(f"ack {family}\n", blank={"Cc", "Cs"}) == f"ack {family}"
    assert one_line(f"ack {family}\n", blank={"Cc", "Cf"}) == "ack \U0001f468 \U0001f469 \U0001f467"
    # White space is folded whatever ``blank`` says.
    assert one_line("a\u2028\t b", blank=()) == "a b"
    assert one_line("a\x00b", blank=()) == "a\x00b"


@pytest.mark.parametrize(
    ("limit", "ellipsis", "cut"),
    [
        (11, "...", "hello world"),
        (10, "...", "hello w..."),
        (9, "...", "hello..."),  # the space before the ellipsis is dropped
        (10, "…", "hello wor…"),
        (10, "", "hello worl"),
        (5, "", "hello"),
    ],
)
def test_a_text_longer_than_limit_ends_in_the_ellipsis(limit: int, ellipsis: str, cut: str) -> None:
    text = "hello \n world"
    assert one_line(text, limit, ellipsis=ellipsis) == cut
    assert len(cut) <= limit


def test_a_huge_hostile_text_is_cut_to_the_limit() -> None:
    garbage = "\x1b[31m" + "A" * 10_000_000
    assert one_line(garbage, 20) == "[31m" + "A" * 13 + "..."


def test_white_space_at_the_head_of_a_long_text_does_not_hide_its_words() -> None:
    text = " \n" * 5_000 + "the words " * 100
    assert one_line(text, 30) == one_line(text)[:27] + "..."


@given(
    st.text(alphabet=st.sampled_from(["a", "b", " ", "\n", "\x00", "\u200b", "é"]), max_size=400),
    st.integers(min_value=3, max_value=60),
)
def test_the_cut_is_the_cut_of_the_whole_flat_text(text: str, limit: int) -> None:
    flat = one_line(text)
    cut = one_line(text, limit)
    assert cut == (flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "...")
    assert "\n" not in cut and "\x00" not in cut


def test_the_module_imports_nothing_from_pymon() -> None:
    tree = ast.parse(Path(pymon.text.__file__).read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert not [name for name in imported if name and name.split(".")[0] == "pymon"]


def test_spans_shortens_runs_of_numbers() -> None:
    assert spans(range(256)) == "0-255"
    assert spans([134, 0, 1, 2, 130, 135, 136, 1]) == "0-2, 130, 134-136"
    assert spans([]) == ""


@given(st.sets(st.integers(min_value=0, max_value=300)))
def test_spans_names_every_number_and_no_other(numbers: set[int]) -> None:
    named: set[int] = set()
    for run in filter(None, spans(numbers).split(", ")):
        first, _, last = run.partition("-")
        named.update(range(int(first), int(last or first) + 1))
    assert named == numbers
