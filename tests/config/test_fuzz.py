"""Property: whatever the text, the loader returns a Config or raises ConfigError, never more.

Hypothesis writes YAML documents shaped like configs (the real section, service and
check keys with awkward values) and mutates the shipped examples line by line (lines
dropped, doubled, swapped, re-indented, cut, or given fragments that broke the loader
before: ``!!float x``, ``? [a, [b]]``, ``!!python/object/apply``). Every issue must
name the file it was given, and the run is derandomized and bounded so the suite
stays fast and the same on every machine.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pymon.checks import REGISTRY
from pymon.config.load import DEMO_CONFIG, load_config, load_config_text
from pymon.config.schema import Config, ServiceCommon
from pymon.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    (ROOT / "examples" / "minimal.yaml").read_text(encoding="utf-8"),
    (ROOT / "examples" / "pymon.yaml").read_text(encoding="utf-8"),
    DEMO_CONFIG.read_text(encoding="utf-8"),
]
ENV = {"PYMON_STORAGE_URL": "sqlite:///fuzz.db", "PORT": "5432", "EMPTY": ""}

FUZZ = settings(
    derandomize=True,
    database=None,
    max_examples=100,
    # A generous bound per example, far above the usual few milliseconds: it is there
    # to catch an input that makes the loader run away (walking a tree, expanding
    # aliases), not to time the loader on a busy machine.
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SECTION_KEYS = [k for k in Config.model_fields if k not in ("source", "checksum", "include")]
SERVICE_KEYS = list(ServiceCommon.key_order)
CHECK_KEYS = sorted({key for kind in REGISTRY.values() for key in kind.spec.model_fields})
NESTED_KEYS = [
    "name", "organization", "url", "listen", "base_path", "channels", "type", "to", "from",
    "ok", "warn", "error", "failed", "status_code", "count", "window", "start", "end",
    "every", "services", "auth", "tokens", "concurrency", "flush_interval", "history",
]  # fmt: skip
WORDS = [
    "30s", "5m", "1h", "0s", "-1s", "1e400s", "500ms", "2d", "0.5", "200-299, 304", "2000+",
    "5-1", "x-y", "${PORT}", "${UNSET}", "${EMPTY:-8080}", "$${literal", "${", "${1}",
    "127.0.0.1", "127.0.0.1:99999", "http://127.0.0.1:8080/", "sqlite:///:memory:",
    "postgresql://u@/db", "email", "log", "webhook", "command", "tcp", "http", "ping",
    "dns", "plugin", "heartbeat", "* * * * *", "61 * * * *", "2024-05-01T00:00:00Z",
    "", " ", "\t", "\x00", "é", "\u202e", "a" * 300,
]  # fmt: skip
RAW = [
    "!!float x", "!!int x", "!!bool maybe", "!!null x", "!!timestamp x", "!!binary aGk=",
    "!!set {a, b}", "!!omap [a: 1]", "!!pairs [a: 1]", "!local x", "!local {a: 1}",
    "!!python/object/apply:os.system ['true']", "!!python/name:os.system", "!!str 12",
    "!!int '0x10'", "!!float '1e999'", "{? [a, [b]] : x}", "{? {a: 1} : x}", "{? [a] : x}",
    "[? [a, [b]] : x]", "&a [*a]", "*nowhere", "2024-13-45", "2024-02-30 25:61:61",
    "2024-05-01", "1e999", "-.inf", ".nan", "0x1F", "0o17", "~", "'unterminated",
    '"bad \\q escape"', "{", "]", "[a, {b: }]", "!!map [a]", "!!seq {a: 1}", "!!str {a: 1}",
]  # fmt: skip
LINES = [
    "? [a, [b]]\n: x", "? {a: 1}\n: x", "? [a]\n: x", "<<: *nowhere", "<<: [1, 2]",
    "&x {a: 1}\n<<: *x", "[]", "{}", ": :", "- -", "|\n  block", ">-", "\t- tab",
    "%YAML 1.1", "---", "...", "#", "a: b: c", "key: value", "!!str",
    "services: [{name: x, type: tcp, host: 127.0.0.1, port: 1}]",
]  # fmt: skip


class Raw(str):
    """A value written into the YAML text as it is (a tag, an alias, a broken flow)."""

    __slots__ = ()


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(WORDS),
    st.text(max_size=12),
    st.sampled_from(RAW).map(Raw),
)


def _mapping(keys: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    key = st.one_of(st.sampled_from(keys), st.text(max_size=8))
    return st.dictionaries(key, values, max_size=5)


values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), _mapping(NESTED_KEYS, inner)),
    max_leaves=12,
)
services = st.fixed_dictionaries(
    {"name": st.one_of(st.sampled_from(["a", "b", "web"]), scalars), "type": st.one_of(
        st.sampled_from(sorted(REGISTRY)), scalars)},
    optional={key: values for key in [*SERVICE_KEYS, *CHECK_KEYS] if key not in ("name", "type")},
)  # fmt: skip
documents = st.one_of(
    _mapping(SECTION_KEYS, values),
    st.fixed_dictionaries({"services": st.lists(services, max_size=4)}, optional={
        key: values for key in SECTION_KEYS if key != "services"}),
    values,
)  # fmt: skip


def block(value: Any, indent: int = 0) -> list[str]:
    """``value`` as block-style YAML lines; a :class:`Raw` is written as it is."""
    pad = " " * indent
    if isinstance(value, dict) and value:
        lines = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines += [f"{pad}{_scalar(key)}:", *block(item, indent + 2)]
            else:
                lines.append(f"{pad}{_scalar(key)}: {_scalar(item)}")
        return lines
    if isinstance(value, list) and value:
        return [line for item in value for line in [f"{pad}-", *block(item, indent + 2)]]
    return [pad + _scalar(value)]


def _scalar(value: Any) -> str:
    return str(value) if isinstance(value, Raw) else json.dumps(value, ensure_ascii=False)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A shipped config with one to four lines changed."""
    lines = draw(st.sampled_from(SOURCES)).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "double", "swap", "indent", "cut", "insert", "value"]))
        piece = draw(st.one_of(st.sampled_from([*RAW, *LINES]), st.sampled_from(WORDS), st.text()))
        if op == "drop":
            del lines[i]
        elif op == "double":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent":
            lines[i] = " " * draw(st.integers(0, 6)) + lines[i].lstrip()
        elif op == "cut":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif op == "insert":
            lead = len(lines[i]) - len(lines[i].lstrip())
            lines.insert(i, lines[i][:lead] + piece)
        else:
            lines[i] = lines[i].split(":", 1)[0] + ": " + piece
        if not lines:
            lines = [""]
    return "\n".join(lines) + "\n"


ISSUE = re.compile(r"(?P<file>.+?)(:(?P<line>[1-9][0-9]*))?: (?P<rest>.+)", re.DOTALL)


def _outcome(load: Any, source: str) -> None:
    """``load()`` gives a Config, or a ConfigError whose every issue names ``source``."""
    try:
        config = load()
    except ConfigError as exc:
        issues = exc.issues
    else:
        assert isinstance(config, Config)
        return
    assert issues
    for issue in issues:
        assert issue.file == source, str(issue)
        assert issue.line is None or issue.line >= 1, str(issue)
        assert issue.message.strip(), str(issue)
        assert ISSUE.fullmatch(str(issue)), str(issue)


@pytest.fixture(scope="module")
def empty_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The current directory while fuzzing: relative ``include`` globs find nothing in it."""
    where = tmp_path_factory.mktemp("fuzz")
    with contextlib.chdir(where):
        yield where


@FUZZ
@given(document=documents, flow=st.booleans())
def test_generated_documents_load_or_fail_cleanly(
    empty_dir: Path, document: Any, flow: bool
) -> None:
    # JSON is YAML's flow style; it writes a Raw value as a quoted string.
    text = json.dumps(document, ensure_ascii=False) if flow else "\n".join(block(document))
    _outcome(lambda: load_config_text(text, "fuzz.yaml", env=ENV), "fuzz.yaml")


@FUZZ
@given(text=mutated())
def test_mutated_examples_load_or_fail_cleanly(empty_dir: Path, text: str) -> None:
    _outcome(lambda: load_config_text(text, "fuzz.yaml", env=ENV), "fuzz.yaml")


@FUZZ
@given(
    text=mutated(),
    at=st.integers(min_value=0),
    junk=st.binary(min_size=1, max_size=4),
)
def test_mutated_files_with_stray_bytes_load_or_fail_cleanly(
    empty_dir: Path, text: str, at: int, junk: bytes
) -> None:
    data = text.encode()
    at %= len(data) + 1
    path = empty_dir / "fuzz.yaml"
    path.write_bytes(data[:at] + junk + data[at:])
    _outcome(lambda: load_config(path, env=ENV), str(path))


@FUZZ
@given(text=st.text(max_size=200))
def test_any_text_loads_or_fails_cleanly(empty_dir: Path, text: str) -> None:
    _outcome(lambda: load_config_text(text, "fuzz.yaml", env=ENV), "fuzz.yaml")
