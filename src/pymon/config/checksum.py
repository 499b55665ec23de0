"""The config's checksum: SHA-256 of its bytes, the ``node`` section's lines left out.

Nodes compare checksums (docs/cluster.md): a node whose config differs from the
cluster's holds no shards. ``node`` (this node's location) is the one section that
may differ between the nodes of one cluster, so it is not hashed: the lines from
the ``node:`` key to the next top-level key (or the end of the file) are skipped,
as bytes, and the rest is hashed as it is. Two files that differ only there have
one checksum, equal to that of the file without a ``node`` section at all; any
other byte still counts.

Skipping lines is exact only when those lines hold ``node``'s value and nothing
else, so it is done only when the reader's line marks prove it (:func:`node_span`):
the file was read as plain YAML (no anchor, alias, merge key or tag that could
carry a value out of the section), ``node:`` starts its line, no other top-level
key starts on that line, and lines end in ``\\n`` or ``\\r\\n``. Otherwise the whole
file is hashed, ``node`` included: nodes then agree only if their files are equal,
the safe side. Finding the span costs a few substring searches, not a parse.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Final

from pymon.config.tree import Tree

__all__ = ["SECTION", "checksum", "node_span"]

#: The top-level key left out of the checksum.
SECTION: Final = "node"

# ``node:`` (plain or quoted, spaces before the colon) at the start of the file, after
# a byte-order mark; and after a line break (one pass of the regex over the bytes).
_FIRST: Final = re.compile(rb"(?:\xef\xbb\xbf)?(?:node|\"node\"|'node')[ \t]*:")
_LATER: Final = re.compile(rb"\n(?:node|\"node\"|'node')[ \t]*:")


def checksum(data: bytes, span: tuple[int, int] | None) -> str:
    """SHA-256 of ``data`` (hex) without the bytes ``span`` covers (start, end)."""
    if span is None:
        return hashlib.sha256(data).hexdigest()
    view = memoryview(data)
    digest = hashlib.sha256(view[: span[0]])
    digest.update(view[span[1] :])
    return digest.hexdigest()


def node_span(data: bytes, tree: Tree) -> tuple[int, int] | None:
    """The bytes of ``data`` the ``node`` section's lines take, or None if there is
    none or they cannot be told apart exactly (see the module's text).

    ``tree`` is ``data`` just read (``reading.read``), before any file is merged in.
    """
    lines = tree.lines
    first = lines.get((SECTION,))
    if first is None or not tree.plain or not isinstance(tree.data, dict):
        return None
    top: Iterable[str] = tree.data
    after = [lines[(k,)] for k in top if k != SECTION and (k,) in lines]
    if first in after:
        return None  # another key starts on node's line: a flow mapping
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return None  # a lone CR ends a line for YAML, not here
    start = _line_start(data, first)
    if start is None:
        return None
    following = [n for n in after if n > first]
    if not following:
        return start, len(data)
    end = start
    for _ in range(min(following) - first):
        end = data.find(b"\n", end) + 1
        if end == 0:
            return None  # the reader counted more lines than there are
    return start, end


def _line_start(data: bytes, line: int) -> int | None:
    """Where line ``line`` starts if it starts with the ``node`` key, else None."""
    if line == 1:
        return 0 if _FIRST.match(data) else None
    counted, number = 0, 1
    for found in _LATER.finditer(data):
        at = found.start() + 1
        number += data.count(b"\n", counted, at)
        counted = at
        if number == line:
            return at
        if number > line:
            break
    return None
