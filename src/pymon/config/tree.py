"""The config as read: plain data, the file and line of every key path, the issues found.

A :class:`Tree` is first one file read (``reading.py``), then the main file with its
included files merged in (``includes.py``). Every later step records its issues
here by key path; the tree turns each into the file and line the operator wrote,
with the path as it is in that file.
"""

from __future__ import annotations

from typing import Any, Final

from pymon.config.messages import format_path, is_secret, show
from pymon.errors import ConfigError, ConfigIssue

__all__ = ["LISTS", "KeyPath", "Tree"]

KeyPath = tuple[str | int, ...]

#: Sections that included files add to instead of defining once.
LISTS: Final = ("services", "maintenance")


class Tree:
    """One config's plain data (dict, list, str, int, float, bool, None) and where it came from."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.data: Any = None
        self.lines: dict[KeyPath, int] = {}
        # Read as plain YAML by libyaml (``fastread.py``): no anchor, alias, merge key
        # or tag, so each line holds only what it shows (``checksum.py`` relies on it).
        self.plain = False
        # Strings that held a ${VAR}, as written: messages show these, not the value,
        # which may be a secret.
        self.written: dict[KeyPath, str] = {}
        # Included files: the file of each list item (with its index in that file) and
        # of each other section they define; every other path is in ``source``.
        self.items: dict[tuple[str | int, str | int], tuple[str, int]] = {}
        self.sections: dict[str | int, str] = {}
        self.files: list[str] = [source]
        # Each included file's name and SHA-256 digest (checksum.py: node left out).
        self.included: list[tuple[str, bytes]] = []
        self.issues: list[ConfigIssue] = []

    def issue(self, path: KeyPath, message: str) -> None:
        """Record an issue at ``path``, on the line of its deepest key present in the file."""
        line: int | None = None
        for n in range(len(path), 0, -1):
            if path[:n] in self.lines:
                line = self.lines[path[:n]]
                break
        else:
            if self.data is not None:
                line = 1
        file, shown = self.locate(path)
        self.issues.append(ConfigIssue(file, line, format_path(shown), message))

    def error(self) -> ConfigError:
        """Every issue, once, sorted by file (main first, then as merged) and line."""
        # A dict keeps the first of equal issues (a union can report one twice).
        unique = dict.fromkeys(self.issues)
        order = {name: n for n, name in enumerate(self.files)}
        return ConfigError(
            sorted(
                unique, key=lambda i: (order.get(i.file, len(order)), i.line is None, i.line or 0)
            )
        )

    def locate(self, path: KeyPath) -> tuple[str, KeyPath]:
        """The file ``path`` was written in, and the path as it is in that file."""
        if len(path) >= 2:
            origin = self.items.get((path[0], path[1]))
            if origin is not None:
                return origin[0], (path[0], origin[1], *path[2:])
        if path and path[0] in self.sections and path[0] not in LISTS:
            return self.sections[path[0]], path
        return self.source, path

    def place(self, path: KeyPath, near: KeyPath) -> str:
        """Where ``path`` is, for a message about ``near``: ``line N``, or ``FILE:N`` elsewhere."""
        file = self.locate(path)[0]
        line = self.lines.get(path)
        return f"line {line}" if file == self.locate(near)[0] else f"{file}:{line}"

    def got(self, path: KeyPath, fallback: Any) -> str:
        """The value at ``path`` for a message: as written in the file, else ``fallback``.

        Showing what the operator wrote (``'0s'``, ``'${PORT}'``) rather than what the
        model saw (``0.0``, the port's value) points at the text to fix and keeps
        secrets from the environment out of messages and logs.
        """
        if is_secret(path):
            return "a value that is not shown (a secret)"
        if path in self.written:
            return f"{show(self.written[path])} (from the environment)"
        return show(self._value(path, fallback))

    def _value(self, path: KeyPath, fallback: Any) -> Any:
        """The value at ``path`` in the data (else ``fallback``, e.g. inherited)."""
        node = self.data
        for part in path:
            if isinstance(part, str):
                found = isinstance(node, dict) and part in node
            else:
                found = isinstance(node, list) and 0 <= part < len(node)
            if not found:
                return fallback
            node = node[part]
        return node
