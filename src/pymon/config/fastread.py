"""Plain YAML through libyaml's C parser: the common config read at a tenth of the cost
(docs/performance.md, "Loading a large config").

ruamel.yaml's round-trip loader (``reading.py``) keeps every key's line, but it is
pure Python: about half a millisecond per service, two minutes for 100,000. Most
configs are plain YAML: mappings keyed by text, lists, and plain or quoted
scalars. For those, :func:`read_plain` walks libyaml's event stream (C) and keeps
the lines itself, resolving and building each scalar with ruamel's own YAML 1.2
resolver and constructor, so a value reads exactly as ruamel reads it.

Anything else gives None and the document goes through ruamel, which then decides
the values, the lines and the messages: an error of any kind, a tag, an anchor or
alias, a merge key, a key that is not a scalar, a duplicate key, a ``%`` directive,
more than one document, or no libyaml at all (PyYAML built without it).
``tests/config/test_fastread.py`` holds the two paths to the same results.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.scalarbool import ScalarBoolean

from pymon.config.tree import KeyPath

try:
    from yaml import _yaml
    from yaml.events import (
        DocumentEndEvent,
        DocumentStartEvent,
        MappingEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceEndEvent,
        SequenceStartEvent,
        StreamEndEvent,
        StreamStartEvent,
    )

    _CParser: Any = _yaml.CParser
except ImportError:  # PyYAML without its C extension: ruamel reads everything
    _CParser = None

__all__ = ["Plain", "key_text", "plain_scalar", "read_plain"]

_CORE: Final = "tag:yaml.org,2002:"
_STR: Final = _CORE + "str"
# What a scalar may resolve to here (ruamel builds each as its round trip does).
_BUILT: Final = frozenset(_CORE + name for name in ("int", "float", "bool", "null", "timestamp"))
_DIRECT: Final = tuple(_CORE + name for name in ("int", "float", "bool", "null"))
_MERGE: Final = "<<"


@dataclass(slots=True)
class Plain:
    """A document as plain Python, with the line of each key and item.

    ``data``: dicts, lists, text, numbers, booleans and None (a date as its ISO text);
    ``lines``: the 1-based line of each key path; ``texts``: the paths of the strings
    holding a ``$``, the only ones ``${VAR}`` interpolation can change.
    """

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    texts: list[KeyPath] = field(default_factory=list)


def plain_scalar(value: Any) -> Any:
    """A scalar of ruamel's (``ScalarInt``, ``ScalarBoolean``, ``TimeStamp``...) as
    plain Python."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, ScalarBoolean | bool):  # ScalarBoolean (an anchored bool) is an int
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dt.date):  # also datetime; the models want text, as written
        return value.isoformat()
    return value


class _NotPlain(Exception):
    """The document needs ruamel (see the module's docstring)."""


_UNSET: Final = object()


class _Reader:
    """One walk of one document's events."""

    def __init__(self, text: str) -> None:
        self._next = _CParser(text).get_event
        # ruamel's own round-trip resolver (YAML 1.2) and constructor.
        yaml = YAML(typ="rt")
        if yaml.resolver.yaml_path_resolvers:
            raise _NotPlain
        self._constructor = yaml.constructor
        # Numbers, booleans and nulls straight from their construct method (the
        # generic path looks the tag up again, as an object, for every scalar).
        table_of = type(self._constructor).yaml_constructors
        self._direct = {tag: table_of[tag] for tag in _DIRECT}
        # The resolver's table, looked up as its ``resolve`` does (which asks for the
        # YAML version twice per scalar: most of the cost of this whole reading).
        table = yaml.resolver.versioned_resolver
        self._by_first: dict[str, list[tuple[Any, Any]]] = table
        self._general: list[tuple[Any, Any]] = list(table.get(None, []))
        # A config repeats its words (types, hosts, keys) thousands of times: each
        # plain scalar is resolved once. Every value kept is immutable.
        self._values: dict[str, Any] = {}
        self._keys: dict[tuple[str, bool], str] = {}
        self.out = Plain(None)

    def document(self) -> Plain:
        if not isinstance(self._next(), StreamStartEvent):
            raise _NotPlain
        start = self._next()
        if not isinstance(start, DocumentStartEvent) or start.version or start.tags:
            raise _NotPlain
        self.out.data = self._value(self._next(), ())
        if not isinstance(self._next(), DocumentEndEvent):
            raise _NotPlain
        if not isinstance(self._next(), StreamEndEvent):
            raise _NotPlain  # more than one document
        return self.out

    def _value(self, event: Any, path: KeyPath) -> Any:
        # Aliases have no anchor attribute of this kind; every other node may.
        if getattr(event, "anchor", None) is not None:
            raise _NotPlain
        if isinstance(event, ScalarEvent):
            value = self._scalar(event)
            if isinstance(value, str) and "$" in value:
                self.out.texts.append(path)
            return value
        if event.tag is not None:
            raise _NotPlain
        if isinstance(event, MappingStartEvent):
            return self._mapping(path)
        if isinstance(event, SequenceStartEvent):
            return self._sequence(path)
        raise _NotPlain  # an alias

    def _scalar(self, event: Any) -> Any:
        if event.tag is not None:
            raise _NotPlain
        text: str = event.value
        if not event.implicit[0]:
            return text  # quoted (or a block): text, whatever it says
        value = self._values.get(text, _UNSET)
        if value is _UNSET:
            value = self._values[text] = plain_scalar(self._construct(text, event.style))
        return value

    def _construct(self, text: str, style: Any) -> Any:
        """A plain scalar as ruamel's round trip makes it."""
        tag = self._tag(text)
        if tag == _STR:
            return text
        if tag not in _BUILT:
            raise _NotPlain
        node = ScalarNode(tag, text, style=style)
        direct = self._direct.get(tag)
        if direct is not None:
            return direct(self._constructor, node)
        return self._constructor.construct_object(node, deep=True)

    def _tag(self, text: str) -> str:
        """The tag ruamel's resolver gives a plain (unquoted) scalar written ``text``."""
        for tag, pattern in (*self._by_first.get(text[:1], ()), *self._general):
            if pattern.match(text):
                return str(tag)
        return _STR

    def _key(self, event: Any) -> str:
        """A mapping key's text as the config's key paths name it (``1``, ``true``...)."""
        if not isinstance(event, ScalarEvent) or event.anchor is not None or event.tag is not None:
            raise _NotPlain
        plain = bool(event.implicit[0])
        name = self._keys.get((event.value, plain))
        if name is None:
            written = self._construct(event.value, event.style) if plain else event.value
            if written == _MERGE and plain:
                raise _NotPlain
            name = self._keys[event.value, plain] = key_text(written)
        return name

    def _mapping(self, path: KeyPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        lines = self.out.lines
        while not isinstance(key := self._next(), MappingEndEvent):
            name = self._key(key)
            if name in out:
                raise _NotPlain  # ruamel says which key, and where
            where = (*path, name)
            lines[where] = _line(key)
            out[name] = self._value(self._next(), where)
        return out

    def _sequence(self, path: KeyPath) -> list[Any]:
        out: list[Any] = []
        lines = self.out.lines
        while not isinstance(item := self._next(), SequenceEndEvent):
            where = (*path, len(out))
            lines[where] = _line(item)
            out.append(self._value(item, where))
        return out


def _line(event: Any) -> int:
    """The 1-based line an event starts on."""
    mark = event.start_mark
    if mark is None:
        raise _NotPlain
    return int(mark.line) + 1


def key_text(key: Any) -> str:
    """A mapping key as the config's key paths name it."""
    if isinstance(key, ScalarBoolean | bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


_BREAKS: Final = frozenset("\x85\u2028\u2029")


def read_plain(text: str) -> Plain | None:
    """``text`` as plain Python with the line of every key and item, if it is plain
    YAML that libyaml reads; None when ruamel must read it (then it may still be valid)."""
    if _CParser is None or not text.strip():
        return None
    if not _BREAKS.isdisjoint(text):
        # ruamel counts NEL, LS and PS as line breaks (YAML 1.1), libyaml does not:
        # the lines after one would differ.
        return None
    try:
        return _Reader(text).document()
    except Exception:
        # Not plain, or not YAML at all: ruamel reads it again and says what it is.
        return None
