"""``include``: merging the files the main config's globs match into its tree.

Their ``services`` and ``maintenance`` lists are appended to the main file's; any
other section may be defined in one file only. The merged tree remembers the file
of every key path, so an issue in an included file names that file, its line and the
path as it is in that file (see :meth:`~pymon.config.tree.Tree.locate`).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pymon.config.checksum import checksum, node_span
from pymon.config.messages import not_sections, show
from pymon.config.reading import decode, read, read_bytes
from pymon.config.tree import LISTS, KeyPath, Tree
from pymon.errors import ConfigIssue

__all__ = ["include"]


def include(tree: Tree, raw: Any, env: Mapping[str, str], base: Path, own: Path | None) -> None:
    """Merge in the files the ``include`` globs ``raw`` match, each glob's matches sorted.

    Relative globs start at ``base``. A glob that matches nothing is fine (an empty
    ``conf.d``); a plain path that does not exist is an error. The including file
    ``own`` and a file matched twice are merged once. The list's own type errors are
    the Config model's to report.
    """
    if not isinstance(raw, list):
        return
    seen = {own.resolve()} if own is not None else set()
    for i, pattern in enumerate(raw):
        if not isinstance(pattern, str):
            continue
        if not pattern.strip():
            tree.issue(("include", i), "must not be empty")
            continue
        full = str(base / os.path.expanduser(pattern))
        if any(c in pattern for c in "*?["):
            matches = sorted(glob.glob(full))
        elif Path(full).is_file():
            matches = [full]
        else:
            what = "is a directory" if Path(full).is_dir() else "no such file"
            tree.issue(("include", i), f"{what}: {full}")
            continue
        for match in matches:
            resolved = Path(match).resolve()
            if resolved in seen or not resolved.is_file():
                continue
            seen.add(resolved)
            _merge(tree, match, env)


def _merge(tree: Tree, name: str, env: Mapping[str, str]) -> None:
    """Read the included file ``name`` and merge its sections into ``tree``."""
    data = read_bytes(name)
    if isinstance(data, ConfigIssue):
        tree.issues.append(data)
        return
    tree.files.append(name)
    text = decode(name, data)
    if isinstance(text, ConfigIssue):
        tree.issues.append(text)
        return
    sub = Tree(name)
    ok = read(sub, text, env)
    # A node section here is left out of the checksum as in the main file.
    tree.included.append((name, bytes.fromhex(checksum(data, node_span(data, sub)))))
    # Issues found while reading (bad YAML, an unset ${VAR}) already name the file.
    tree.issues.extend(sub.issues)
    if not ok or sub.data is None:
        return
    if not isinstance(sub.data, dict):
        tree.issues.append(ConfigIssue(name, 1, "", not_sections(sub.data)))
        return
    for key, value in sub.data.items():
        if value is None:
            continue  # a section whose children are all commented out
        line = sub.lines[(key,)]
        if key == "include":
            tree.issues.append(
                ConfigIssue(name, line, key, "only the main config file may include others")
            )
        elif key in LISTS:
            _append(tree, sub, key, value)
        elif tree.data.get(key) is not None:
            first = tree.sections.get(key, tree.source)
            tree.issues.append(
                ConfigIssue(
                    name,
                    line,
                    key,
                    f"{key} is already defined at {first}:{tree.lines.get((key,))}; "
                    f"only {' and '.join(LISTS)} may be given in several files",
                )
            )
        else:
            tree.data[key] = value
            tree.sections[key] = name
            tree.lines[(key,)] = line
            _adopt(tree, sub, key, lambda path: path)


def _append(tree: Tree, sub: Tree, key: str, value: Any) -> None:
    """Append the included list ``value`` (``services``, ``maintenance``) to the main one."""
    if not isinstance(value, list):
        what = "services" if key == "services" else "maintenance windows"
        tree.issues.append(
            ConfigIssue(
                sub.source, sub.lines[(key,)], key, f"expected a list of {what}, got {show(value)}"
            )
        )
        return
    merged = tree.data.get(key)
    if merged is None:
        merged = tree.data[key] = []
        tree.lines[(key,)] = sub.lines[(key,)]
        tree.sections[key] = sub.source
    if not isinstance(merged, list):
        return  # the main file's own error about it is reported
    offset = len(merged)
    merged.extend(value)
    for i in range(len(value)):
        tree.items[(key, offset + i)] = (sub.source, i)

    def shift(path: KeyPath) -> KeyPath:
        index = path[1]
        assert isinstance(index, int)
        return (key, offset + index, *path[2:])

    _adopt(tree, sub, key, shift)


def _adopt(tree: Tree, sub: Tree, key: str, move: Callable[[KeyPath], KeyPath]) -> None:
    """Take ``sub``'s lines and written values under ``key``, at their merged paths."""
    for path, line in sub.lines.items():
        if len(path) > 1 and path[0] == key:
            tree.lines[move(path)] = line
    for path, text in sub.written.items():
        if len(path) > 1 and path[0] == key:
            tree.written[move(path)] = text
