"""Text from outside (a target's reply, an error body, a mail) made safe to show on one
line, lists of numbers made short enough for one, and durations as people say them.

Imports nothing from pymon, so that every package may use it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Iterable
from typing import Final

__all__ = ["UNPRINTABLE", "one_line", "span", "spans"]

#: The Unicode categories ``str.isprintable`` refuses, besides the separators
#: (every separator is white space, and white space is folded anyway): control,
#: format, surrogate, private use and unassigned characters.
UNPRINTABLE: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def one_line(
    text: str,
    limit: int | None = None,
    *,
    ellipsis: str = "...",
    blank: Collection[str] = UNPRINTABLE,
) -> str:
    """``text`` on one line: every run of white space or of the characters whose
    Unicode category is in ``blank`` becomes one space, and the ends are trimmed.

    So a hostile text can neither forge another line (in a log, a header, an SMTP
    reply) nor hide behind control sequences. ``blank`` is every unprintable
    category by default; a caller keeping more of what a human wrote passes fewer
    (``{"Cc", "Cs"}`` keeps format characters such as the joiners in emoji).

    When the result is longer than ``limit`` characters it is cut to ``limit``,
    ending in ``ellipsis`` (trailing spaces before it dropped). The work is bounded
    by ``limit``, not by the length of ``text``: a megabyte of garbage costs what a
    few times ``limit`` characters do, and gives the same result as reading it all.
    """
    if limit is None:
        return _flat(text, blank)
    # A prefix of ``text`` flattens to a prefix of the whole flattened text, so once
    # a prefix yields more than ``limit`` characters the rest cannot change the cut.
    size = 4 * limit + 4
    flat = _flat(text[:size], blank)
    while len(flat) <= limit and size < len(text):
        size *= 4
        flat = _flat(text[:size], blank)
    if len(flat) <= limit:
        return flat
    return flat[: max(0, limit - len(ellipsis))].rstrip() + ellipsis


def _flat(text: str, blank: Collection[str]) -> str:
    # Only an unprintable character can be in ``blank``, so the category of the
    # common, printable ones is never looked up.
    cleaned = "".join(
        " " if not c.isprintable() and unicodedata.category(c) in blank else c for c in text
    )
    return " ".join(cleaned.split())


def spans(numbers: Iterable[int]) -> str:
    """``numbers`` as runs: ``0-127, 130, 134-140`` (a log line, not 256 numbers)."""
    ordered = sorted(set(numbers))
    runs: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        runs.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ", ".join(runs)


def span(seconds: float) -> str:
    """A duration as people say it: ``300 ms``, ``45 s``, ``3 min``, ``2 h 5 min``, ``4 d 3 h``."""
    if 0 < seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"
