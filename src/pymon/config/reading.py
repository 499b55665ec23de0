"""Config text to plain data, keeping the line of every mapping key and sequence item.

ruamel.yaml's round-trip loader keeps those lines; :func:`read` walks its tree into
a :class:`~pymon.config.tree.Tree` of plain Python, interpolating ``${VAR}`` in
string values (``interpolation.py``). Bytes that are not UTF-8, YAML that does not
parse, and a file that expands past :data:`MAX_NODES` values are issues too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.comments import merge_attrib
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from pymon.config.interpolation import interpolate
from pymon.config.tree import KeyPath, Tree
from pymon.errors import ConfigIssue

__all__ = ["MAX_NODES", "decode", "read", "read_bytes"]

MAX_NODES: Final = 1_000_000
"""An alias-heavy file ("billion laughs") expands exponentially into plain data;
this is far beyond any real config yet keeps memory bounded."""


class _TooLarge(Exception):
    """The plain data would exceed :data:`MAX_NODES`."""


def read_bytes(name: str | Path) -> bytes | ConfigIssue:
    """The file's bytes, or the issue saying why it cannot be read."""
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        return ConfigIssue(str(name), None, "", f"cannot read: {exc.strerror or exc}")


def decode(name: str, data: bytes) -> str | ConfigIssue:
    """``data`` as text, or the issue naming the line of the first byte that is not UTF-8."""
    try:
        # utf-8-sig: editors on Windows may start the file with a byte-order mark.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.start + 1].hex()
        return ConfigIssue(name, line, "", f"not UTF-8 text (byte 0x{bad})")


def read(tree: Tree, text: str, env: Mapping[str, str]) -> bool:
    """Parse ``text`` into ``tree.data``; False (with an issue) if it is not usable YAML."""
    line: int | None = None
    try:
        tree.data = _Walk(tree, env).plain(YAML(typ="rt").load(text), (), 1)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = "invalid YAML: " + ", ".join(str(p) for p in (exc.context, exc.problem) if p)
    except YAMLError as exc:
        message = f"invalid YAML: {exc}"
    except RecursionError:
        message = "invalid YAML: nested too deeply"
    except _TooLarge:
        message = f"the config expands to more than {MAX_NODES:,} values (aliases?)"
    else:
        return True
    tree.issues.append(ConfigIssue(tree.source, line, "", message))
    return False


class _Walk:
    """One walk of ruamel's tree, counting the values it makes."""

    def __init__(self, tree: Tree, env: Mapping[str, str]) -> None:
        self.tree = tree
        self.env = env
        self.nodes = 0

    def plain(self, node: Any, path: KeyPath, line: int) -> Any:
        """``node`` as plain Python; records the line of each key and item beneath it."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooLarge
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                name = _key_text(key)
                key_line = _key_line(node, key, line)
                self.tree.lines[(*path, name)] = key_line
                out[name] = self.plain(value, (*path, name), key_line)
            return out
        if isinstance(node, list):
            items: list[Any] = []
            for i, value in enumerate(node):
                item_line = _item_line(node, i, line)
                self.tree.lines[(*path, i)] = item_line
                items.append(self.plain(value, (*path, i), item_line))
            return items
        if isinstance(node, str):
            return self._interpolate(str(node), path)
        if isinstance(node, ScalarBoolean | bool):  # ScalarBoolean (an anchored bool) is an int
            return bool(node)
        if isinstance(node, int):
            return int(node)
        if isinstance(node, float):
            return float(node)
        if isinstance(node, dt.date):  # also datetime; the models want text, as written
            return node.isoformat()
        return node

    def _interpolate(self, text: str, path: KeyPath) -> str:
        done = interpolate(text, self.env)
        if done.from_env:
            self.tree.written[path] = text
        for problem in done.problems:
            self.tree.issue(path, problem)
        return done.text


def _key_text(key: Any) -> str:
    if isinstance(key, ScalarBoolean | bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


def _key_line(node: Any, key: Any, fallback: int) -> int:
    """1-based line of ``key`` in the mapping ``node`` (or in a map merged in with ``<<``)."""
    for mapping in (node, *getattr(node, merge_attrib, ())):
        pos = getattr(getattr(mapping, "lc", None), "data", {}).get(key)
        if pos is not None:
            return int(pos[0]) + 1
    return fallback


def _item_line(node: Any, index: int, fallback: int) -> int:
    pos = getattr(getattr(node, "lc", None), "data", {}).get(index)
    return int(pos[0]) + 1 if pos is not None else fallback
