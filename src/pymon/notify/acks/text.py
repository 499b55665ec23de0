"""Text at the acknowledgement server's edges: a human's words kept on one line, and
text from a message made safe to log."""

from __future__ import annotations

import functools

from pymon.text import one_line

__all__ = ["human_line", "loggable"]

# A human's words on one line: only control characters (and lone surrogates) become
# spaces; format characters stay (the joiners inside emoji, right-to-left marks).
# A cut ends where it falls, without an ellipsis.
human_line = functools.partial(one_line, ellipsis="", blank=frozenset({"Cc", "Cs"}))


def loggable(text: str) -> str:
    """``text`` safe to log: one line, no lone surrogates, bounded."""
    return human_line(text.encode("utf-8", "replace").decode("utf-8"), 200)
