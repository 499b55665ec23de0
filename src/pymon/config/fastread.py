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

from dataclasses import dataclass, field
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.scalarbool import ScalarBoolean

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

__all__ = ["Lined", "LinedMap", "LinedSeq", "key_text", "read_plain"]

_CORE: Final = "tag:yaml.org,2002:"
_STR: Final = _CORE + "str"
# What a scalar may resolve to here (ruamel builds each as its round trip does).
_BUILT: Final = frozenset(_CORE + name for name in ("int", "float", "bool", "null", "timestamp"))
_DIRECT: Final = tuple(_CORE + name for name in ("int", "float", "bool", "null"))
_MERGE: Final = "<<"


@dataclass(slots=True)
class LinedMap:
    """A mapping: each key's text and 1-based line, and its values in order."""

    keys: list[tuple[str, int]] = field(default_factory=list)
    values: list[Lined] = field(default_factory=list)


@dataclass(slots=True)
class LinedSeq:
    """A list: each item's 1-based line, and the items in order."""

    lines: list[int] = field(default_factory=list)
    values: list[Lined] = field(default_factory=list)


# Scalars are as ruamel's round-trip constructor makes them (``ScalarInt``,
# ``ScalarBoolean``, ``TimeStamp``...): ``reading._Walk`` makes them plain.
Lined = LinedMap | LinedSeq | Any


class _NotPlain(Exception):
    """The document needs ruamel (see the module's docstring)."""


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

    def document(self) -> Lined:
        if not isinstance(self._next(), StreamStartEvent):
            raise _NotPlain
        start = self._next()
        if not isinstance(start, DocumentStartEvent) or start.version or start.tags:
            raise _NotPlain
        value = self._value(self._next())
        if not isinstance(self._next(), DocumentEndEvent):
            raise _NotPlain
        if not isinstance(self._next(), StreamEndEvent):
            raise _NotPlain  # more than one document
        return value

    def _value(self, event: Any) -> Lined:
        # Aliases have no anchor attribute of this kind; every other node may.
        if getattr(event, "anchor", None) is not None:
            raise _NotPlain
        if isinstance(event, ScalarEvent):
            return self._scalar(event)
        if event.tag is not None:
            raise _NotPlain
        if isinstance(event, MappingStartEvent):
            return self._mapping()
        if isinstance(event, SequenceStartEvent):
            return self._sequence()
        raise _NotPlain  # an alias

    def _scalar(self, event: Any) -> Lined:
        if event.tag is not None:
            raise _NotPlain
        tag = self._tag(event.value, event.implicit[0])
        if tag == _STR:
            return str(event.value)
        if tag not in _BUILT:
            raise _NotPlain
        node = ScalarNode(tag, event.value, style=event.style)
        direct = self._direct.get(tag)
        if direct is not None:
            return direct(self._constructor, node)
        return self._constructor.construct_object(node, deep=True)

    def _tag(self, value: str, plain: bool) -> str:
        """The tag ruamel's resolver gives a scalar written ``value``: only a plain
        (unquoted) one is looked at; quoted text is text."""
        if plain:
            for tag, pattern in (*self._by_first.get(value[:1], ()), *self._general):
                if pattern.match(value):
                    return str(tag)
        return _STR

    def _mapping(self) -> LinedMap:
        out = LinedMap()
        seen: set[str] = set()
        while not isinstance(key := self._next(), MappingEndEvent):
            if not isinstance(key, ScalarEvent) or key.anchor is not None:
                raise _NotPlain
            written = self._scalar(key)
            if written == _MERGE and key.implicit[0]:
                raise _NotPlain
            name = key_text(written)
            if name in seen:
                raise _NotPlain  # ruamel says which key, and where
            seen.add(name)
            out.keys.append((name, _line(key)))
            out.values.append(self._value(self._next()))
        return out

    def _sequence(self) -> LinedSeq:
        out = LinedSeq()
        while not isinstance(item := self._next(), SequenceEndEvent):
            out.lines.append(_line(item))
            out.values.append(self._value(item))
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


def read_plain(text: str) -> Lined | None:
    """The value of ``text`` with the line of every key and item, if it is plain YAML
    that libyaml reads; None when ruamel must read it (then it may still be valid)."""
    if _CParser is None or not text.strip():
        return None
    try:
        return _Reader(text).document()
    except Exception:
        # Not plain, or not YAML at all: ruamel reads it again and says what it is.
        return None
