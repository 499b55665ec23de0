"""Badges: small SVG images in the flat "label | value" style READMEs carry.

The text is measured with a table of character widths (pixels at 11 px in a
Verdana-like face, estimated by hand for pymon), so no font file is read; a
character outside the table counts as an average letter, a wide East Asian one as
a square. Every text is XML-escaped and cut to :data:`MAX_TEXT` characters.
"""

from __future__ import annotations

import unicodedata
from html import escape
from typing import Final

__all__ = ["COLOURS", "MAX_TEXT", "badge", "text_width"]

MAX_TEXT: Final = 80
"""The most characters of a label or a value a badge shows (an ellipsis marks a cut)."""

COLOURS: Final = {
    "brightgreen": "#44cc11",
    "green": "#97ca00",
    "yellowgreen": "#a4a61d",
    "yellow": "#dfb317",
    "orange": "#fe7d37",
    "red": "#e05d44",
    "blue": "#007ec6",
    "grey": "#9f9f9f",
}
"""The value side's colours by name."""

_LABEL_COLOUR: Final = "#555555"
_PADDING: Final = 6.0  # each side of a text
_DEFAULT_WIDTH: Final = 7.0
_WIDE_WIDTH: Final = 11.0

# Groups of characters of (about) the same advance, in pixels.
_WIDTH_GROUPS: Final[tuple[tuple[str, float], ...]] = (
    ("iIl'|!.,:;", 3.6),
    ("jft()[]{}/\\` ", 4.4),
    ('r"-_', 5.0),
    ("sczJ?*^", 5.9),
    ("aekvxyL", 6.5),
    ("bdghnopquF0123456789$", 7.0),
    ("ETYZPS", 7.4),
    ("ABKRVX&#~<>=+", 7.8),
    ("CDHNUG", 8.3),
    ("OQ", 8.7),
    ("wM", 9.5),
    ("m", 10.7),
    ("W@%", 11.5),
)
_WIDTHS: Final = {char: width for chars, width in _WIDTH_GROUPS for char in chars}


def text_width(text: str) -> float:
    """``text``'s estimated width in pixels at 11 px."""
    total = 0.0
    for char in text:
        width = _WIDTHS.get(char)
        if width is None:
            wide = unicodedata.east_asian_width(char) in ("W", "F")
            width = _WIDE_WIDTH if wide else _DEFAULT_WIDTH
        total += width
    return total


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def badge(label: str, value: str, colour: str) -> bytes:
    """The SVG of a badge ``label | value``, the value on ``colour`` (a name of
    :data:`COLOURS`)."""
    label, value = _cut(label), _cut(value)
    left = round(text_width(label) + 2 * _PADDING)
    right = round(text_width(value) + 2 * _PADDING)
    total = left + right
    fill = COLOURS[colour]
    shown_label, shown_value = escape(label), escape(value)
    title = escape(f"{label}: {value}")
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img"'
        f' aria-label="{title}"><title>{title}</title>'
        '<linearGradient id="shine" x2="0" y2="100%">'
        '<stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="round"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        '<g clip-path="url(#round)">'
        f'<rect width="{left}" height="20" fill="{_LABEL_COLOUR}"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{fill}"/>'
        f'<rect width="{total}" height="20" fill="url(#shine)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif"'
        ' font-size="11">'
        f"{_text(left / 2, shown_label)}{_text(left + right / 2, shown_value)}"
        "</g></svg>"
    )
    return svg.encode()


def _text(x: float, shown: str) -> str:
    # A shadow one pixel lower, then the text: legible on any value colour.
    return (
        f'<text x="{x:g}" y="15" fill="#010101" fill-opacity=".3">{shown}</text>'
        f'<text x="{x:g}" y="14">{shown}</text>'
    )
