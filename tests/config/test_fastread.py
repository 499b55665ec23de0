"""libyaml's fast path reads exactly what ruamel reads: the same values, the same line
of every key and item, the same issues; and whatever it does not take, ruamel does.

Each text is read twice, once as ``read`` does it (the fast path when it takes the
text) and once through ruamel alone, and the two trees compared. The texts: the
shipped configs, a corpus of awkward scalars and keys, and the fuzz test's
generated documents and mutated examples.
"""

from __future__ import annotations

import json
import math
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymon.config import reading
from pymon.config.fastread import read_plain
from pymon.config.tree import Tree
from tests.config.test_fuzz import ENV, FUZZ, SOURCES, block, documents, mutated

SCALARS = [
    "true", "True", "TRUE", "false", "yes", "no", "on", "off", "y", "n", "~", "null",
    "Null", "", "0", "-0", "017", "0o17", "0x1F", "1_000", "1:30", "1e3", "1.5e-3",
    ".inf", "-.Inf", ".nan", "3.", ".5", "+12", "2024-05-01", "2024-05-01T02:03:04Z",
    "2024-05-01 02:03:04.5 +02:00", "2024-13-45", "'017'", '"yes"', "'true'", '"\\u00e9"',
    "'it''s'", "a b", "${PORT}", "${UNSET:-x}", "http://h:8080/p?a=1&b=2#f", "[1, 2]",
    "{a: 1}", "|\n  block\n  text", ">-\n  folded\n  text", "é", "- x", "\tb",
]  # fmt: skip
KEYS = ["name", "1", "0x10", "true", "no", "~", "''", "1.5", "2024-05-01", "'a: b'"]


def both(text: str) -> tuple[Tree, Tree, bool]:
    """``text`` read as ``read`` does and through ruamel alone; whether fast was used."""
    fast, slow = Tree("t.yaml"), Tree("t.yaml")
    fast_ok = reading.read(fast, text, ENV)
    used = read_plain(text) is not None
    with mock.patch("pymon.config.reading.read_plain", return_value=None):
        slow_ok = reading.read(slow, text, ENV)
    assert fast_ok == slow_ok, text
    return fast, slow, used


def same(text: str) -> bool:
    """Both reads agree on everything; whether the fast path took the text."""
    fast, slow, used = both(text)
    assert _comparable(fast.data) == _comparable(slow.data), text
    assert fast.lines == slow.lines, text
    assert fast.written == slow.written, text
    assert [str(i) for i in fast.issues] == [str(i) for i in slow.issues], text
    return used


def _comparable(value: Any) -> Any:
    """NaN equal to NaN, types kept apart (1 is not True, 1.0 is not 1), other objects
    by their repr."""
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if value is None or isinstance(value, str | int | float):
        return (type(value).__name__, value)
    # What ruamel hands on as it is (a TaggedScalar for "!!str 12"): no __eq__ of its own.
    return (type(value).__name__, repr(value))


@pytest.mark.parametrize("source", range(len(SOURCES)))
def test_the_shipped_configs_take_the_fast_path_and_read_the_same(source: int) -> None:
    assert same(SOURCES[source])


@pytest.mark.parametrize("scalar", SCALARS)
def test_every_awkward_scalar_reads_the_same(scalar: str) -> None:
    text = f"a:\n  b: {scalar}\n  c:\n    - {scalar}\n    - x\n"
    same(text)
    same(f"[{scalar}]\n" if "\n" not in scalar else text)


@pytest.mark.parametrize("key", KEYS)
def test_keys_of_every_kind_read_the_same(key: str) -> None:
    assert same(f"services:\n  - {key}: 1\n    other: 2\n")


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nb: *x\n",
        "base: &b {x: 1}\nuse:\n  <<: *b\n  y: 2\n",
        "a: !!int '12'\n",
        "a: !local x\n",
        "a: 1\na: 2\n",
        "? [a, b]\n: x\n",
        "%YAML 1.1\n---\na: yes\n",
        "a: 1\n---\nb: 2\n",
        "a: [1, 2\n",
        "",
        "# only a comment\n",
    ],
)
def test_what_the_fast_path_does_not_take_ruamel_reads(text: str) -> None:
    assert read_plain(text) is None
    same(text)


def test_a_large_config_takes_the_fast_path() -> None:
    services = "".join(
        f"  - {{name: s{i}, type: tcp, host: 127.0.0.1, port: {1000 + i}, tags: [a, b]}}\n"
        f"  - name: h{i}\n    type: http\n    url: 'http://127.0.0.1/{i}'\n"
        for i in range(500)
    )
    assert same("defaults: {interval: 5s}\nservices:\n" + services)


@FUZZ
@given(document=documents, flow=st.booleans())
def test_generated_documents_read_the_same(document: Any, flow: bool) -> None:
    same(json.dumps(document, ensure_ascii=False) if flow else "\n".join(block(document)))


@FUZZ
@given(text=mutated())
def test_mutated_examples_read_the_same(text: str) -> None:
    same(text)
