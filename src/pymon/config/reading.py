"""Config text to plain data, keeping the line of every mapping key and sequence item.

ruamel.yaml's round-trip loader keeps those lines; :func:`read` walks its tree into
a :class:`~pymon.config.tree.Tree` of plain Python, interpolating ``${VAR}`` in
string values (``interpolation.py``). Bytes that are not UTF-8, YAML that does not
parse, and a file that expands past :data:`MAX_NODES` values are issues too.

Only plain YAML is read: text, numbers, booleans, nulls, dates, lists and mappings
keyed by scalars. Any other tag (``!!python/...``, ``!!binary``, ``!!set``, a local
``!tag``) and a list or mapping used as a key are refused with their line, as is a
tagged scalar the tag cannot read (``!!int x``, ``2024-13-45``): the constructor's
own errors for those are tracebacks, not messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.comments import merge_attrib
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pymon.config.fastread import key_text, plain_scalar, read_plain
from pymon.config.interpolation import interpolate
from pymon.config.messages import format_path, is_secret
from pymon.config.tree import KeyPath, Tree
from pymon.errors import ConfigIssue

__all__ = ["MAX_NODES", "decode", "read", "read_bytes"]

MAX_NODES: Final = 1_000_000
"""An alias-heavy file ("billion laughs") expands exponentially into plain data;
this is far beyond any real config yet keeps memory bounded."""


_CORE: Final = "tag:yaml.org,2002:"
_PLAIN_TAGS: Final = frozenset(
    _CORE + name
    for name in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq", "merge")
)


class _TooLarge(Exception):
    """The plain data would exceed :data:`MAX_NODES`."""


class _NotPlain(ConstructorError):
    """A node that is not plain data (see the module's docstring), at ``problem_mark``.

    ``secret`` is the message without the value, for a key in ``SECRET_KEYS``.
    """

    def __init__(self, problem: str, mark: Any, secret: str | None = None) -> None:
        super().__init__(None, None, problem, mark)
        self.secret = problem if secret is None else secret


class _PlainConstructor(RoundTripConstructor):
    """ruamel's round-trip constructor, refusing what a config never holds, at its line."""

    def construct_non_recursive_object(self, node: Node, tag: str | None = None) -> Any:
        """The value of ``node``; a ConstructorError at its line if it is not plain YAML."""
        wanted = str(node.tag if tag is None else tag)
        if wanted not in _PLAIN_TAGS:
            raise _NotPlain(f"unsupported tag {_tag_name(wanted)} ({_PLAIN})", node.start_mark)
        try:
            return super().construct_non_recursive_object(node, tag)
        except (YAMLError, RecursionError):
            raise
        except Exception as exc:
            # The constructor only turns this node's text into a value (int("x"), a
            # date with month 13), so whatever it raises is about this node.
            raise _NotPlain(
                f"cannot read {_written(node)} as {_tag_name(wanted)}{_why(exc)}",
                node.start_mark,
                f"cannot read a value that is not shown (a secret) as {_tag_name(wanted)}",
            ) from exc

    # The signature is RoundTripConstructor's, which ruamel itself declares unlike its base's.
    def construct_mapping(self, node: Any, maptyp: Any, deep: bool = False) -> Any:  # type: ignore[override]
        """As ruamel's, once every key is known to be a scalar (a list key is unhashable)."""
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode):
                kind = "a list" if isinstance(key_node, SequenceNode) else "a mapping"
                raise _NotPlain(
                    f"a key must be text or a number, not {kind} (a '? ' key)", key_node.start_mark
                )
        return super().construct_mapping(node, maptyp, deep)


_PLAIN: Final = "a config holds text, numbers, booleans, lists and mappings"


def _tag_name(tag: str) -> str:
    return "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag


def _why(exc: Exception) -> str:
    # A KeyError's text is only the key (the scalar, shown already).
    return "" if isinstance(exc, KeyError) or not str(exc) else f" ({exc})"


def _written(node: Node) -> str:
    if isinstance(node, ScalarNode):
        text = str(node.value)
        return repr(text if len(text) <= 40 else text[:37] + "...")
    return "a mapping" if isinstance(node, MappingNode) else "a list"


def _loader() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Constructor = _PlainConstructor
    return yaml


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
    """Parse ``text`` into ``tree.data``; False (with an issue) if it is not usable YAML.

    Plain documents go through libyaml (``fastread.py``, a tenth of the time); anything
    it does not take, and every document with a problem, through ruamel.yaml here, so
    the values, lines and messages are ruamel's either way.
    """
    fast = read_plain(text)
    if fast is not None:
        tree.lines = fast.lines
        tree.plain = True
        walk = _Walk(tree, env)
        # The document in a box, so that a path is never empty (a lone "$x" is a document).
        box: list[Any] = [fast.data]
        for at in fast.texts:
            holder: Any = box
            last: str | int = 0
            for part in at:
                holder, last = holder[last], part
            holder[last] = walk.text(holder[last], at)
        tree.data = box[0]
        return True
    line: int | None = None
    path = ""
    try:
        tree.data = _Walk(tree, env).plain(_loader().load(text), (), 1)
    except _NotPlain as exc:
        line = exc.problem_mark.line + 1
        where = _path_to(text, exc.problem_mark)
        path = format_path(where)
        message = exc.secret if is_secret(where) else str(exc.problem)
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
    tree.issues.append(ConfigIssue(tree.source, line, path, message))
    return False


def _path_to(text: str, mark: Any) -> KeyPath:
    """The key path of the node at ``mark`` in ``text``, which composes (it did once).

    Found in the node graph, before any value is made: the deepest node starting
    at ``mark`` (a mapping and its first key start together); a key that is itself
    the problem gives its mapping's path. Aliases can make the graph cyclic.
    """
    found: KeyPath = ()
    try:
        root = YAML(typ="rt").compose(text)
    except RecursionError:  # nested at the very limit: the line alone must do
        return found
    stack: list[tuple[Node, KeyPath]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        at = (node.start_mark.line, node.start_mark.column) == (mark.line, mark.column)
        if at and len(path) >= len(found):
            found = path
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if not isinstance(key, ScalarNode):
                    stack.append((key, path))
                    continue
                stack.append((value, (*path, key_text(key.value))))
        elif isinstance(node, SequenceNode):
            stack.extend((item, (*path, i)) for i, item in enumerate(node.value))
    return found


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
                name = key_text(key)
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
        return self._scalar(node, path)

    def _scalar(self, node: Any, path: KeyPath) -> Any:
        """A scalar of ruamel's as plain Python."""
        value = plain_scalar(node)
        return self.text(value, path) if isinstance(value, str) else value

    def text(self, text: str, path: KeyPath) -> str:
        """A string value at ``path`` with its ``${VAR}`` references interpolated."""
        done = interpolate(text, self.env)
        if done.from_env:
            self.tree.written[path] = text
        for problem in done.problems:
            self.tree.issue(path, problem)
        return done.text


def _key_line(node: Any, key: Any, fallback: int) -> int:
    """1-based line of ``key`` in the mapping ``node`` (or in a map merged in with ``<<``)."""
    for mapping in (node, *getattr(node, merge_attrib, ())):
        pos = _positions(mapping).get(key)
        if pos is not None:
            return int(pos[0]) + 1
    return fallback


def _item_line(node: Any, index: int, fallback: int) -> int:
    pos = _positions(node).get(index)
    return int(pos[0]) + 1 if pos is not None else fallback


def _positions(node: Any) -> dict[Any, Any]:
    """ruamel's (line, column) of each key or item; None on some nodes, hence ``or``."""
    return getattr(getattr(node, "lc", None), "data", None) or {}
