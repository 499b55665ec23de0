"""Reading a reply: the raw message, of any shape and any damage, parsed (off the
event loop) into a :class:`Reading` of what the server needs: the From addresses,
whether a machine sent it, the headers that carry tokens, the subject, the reply's
own text (the first text/plain part, else the first HTML part as text, quoted
originals dropped), and the tokens found in all of those.

Parsing is bounded: too many nested parts is refused, depth, parts and text are cut.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from html.parser import HTMLParser

from pymon.notify.acks.text import loggable
from pymon.notify.tokens import AckTokens, tokens_in

__all__ = ["Reading", "read"]

log = logging.getLogger("pymon.notify")

_TEXT_MAX = 100_000  # characters of a reply worth reading for a one-line command
_MAX_MULTIPARTS = 50  # a real reply nests a handful; thousands stall the MIME parser
_MAX_PARTS = 200
_MAX_DEPTH = 20
_MAX_CANDIDATES = 20  # tokens tried per message: each one is a lookup
_MULTIPART = re.compile(rb"^content-type:\s*(multipart|message)/", re.I | re.M)
_AUTOMATIC_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_ADDRESS_LIKE = re.compile(r"[^\s<>()\[\]\\,;:\"']+@[^\s<>()\[\]\\,;:\"']+")
_QUOTED_HEADERS = ("in-reply-to", "references", "message-id", "x-pymon-incident", "x-pymon-token")


@dataclass(frozen=True, slots=True)
class Reading:
    """What the server needs from a message, read off-loop in one go.

    ``disguise`` says why the From header cannot be trusted (an address in its
    display name or comment other than the real one), else None.
    """

    senders: tuple[str, ...]
    disguise: str | None
    automatic: str | None
    headers: Mapping[str, tuple[str, ...]]
    subject: str
    text: str

    @property
    def claimed(self) -> frozenset[str]:
        """The incident ids its X-Pymon-Incident headers name."""
        return frozenset(v.strip() for v in self.headers["x-pymon-incident"])

    def tokens(self, recipients: Sequence[str], keys: AckTokens) -> list[str]:
        """The tokens it carries, first found first, each once, at most 20 (each one
        is a lookup): in the recipient addresses, In-Reply-To and References, and an
        X-Pymon-Token that is valid for the one incident X-Pymon-Incident names."""
        found: list[str] = []
        for address in recipients:
            found += tokens_in(address)
        for name in ("in-reply-to", "references"):
            for value in self.headers[name]:
                found += tokens_in(value)
        claimed = self.claimed
        given = [v.strip() for v in self.headers["x-pymon-token"]]
        if len(claimed) == 1 and len(given) == 1:
            (incident_id,) = claimed
            if keys.valid(incident_id, given[0]):
                found.append(given[0].lower())
        return list(dict.fromkeys(found))[:_MAX_CANDIDATES]


def read(raw: bytes) -> Reading:
    """Parse ``raw`` (any shape, any damage) into a :class:`Reading`.

    Raises ValueError for a message too complex to be a reply.
    """
    if len(_MULTIPART.findall(raw)) > _MAX_MULTIPARTS:
        raise ValueError("message too deeply nested")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(name.strip().lower(), []).append(str(value))
    senders = _from_addresses(msg)
    return Reading(
        senders=senders,
        disguise=_disguise(headers.get("from", ()), msg, senders),
        automatic=_automatic(headers),
        headers={k: tuple(headers.get(k, ())) for k in _QUOTED_HEADERS},
        subject=_subject(msg),
        text=_reply_text(msg),
    )


def _from_addresses(msg: Message) -> tuple[str, ...]:
    try:
        found = msg.get_all("From") or []
        return tuple(str(a.addr_spec) for h in found for a in getattr(h, "addresses", ()))
    except Exception:  # the header parser has corners that raise; unreadable = no sender
        return ()


def _disguise(raw: Sequence[str], msg: Message, senders: Sequence[str]) -> str | None:
    """Why the From header holds an address other than its real one, or None.

    ``"oncall@example.org" <evil@evil.com>`` shows a reader (and a lenient parser
    reads ``oncall@example.org <evil@evil.com>`` as) an authorized address that is
    not the sender's. Every address-like word in the header, raw (comments) and
    decoded (encoded words), must be the real address.
    """
    real = {s.strip().lower() for s in senders}
    try:
        decoded = [str(h) for h in msg.get_all("From") or []]
    except Exception:  # the header parser has corners that raise; the raw text still counts
        decoded = []
    for text in (*raw, *decoded):
        for word in _ADDRESS_LIKE.findall(text):
            if word.strip(".").lower() not in real:
                return f"the From header shows another address ({loggable(word)[:100]})"
    return None


def _subject(msg: Message) -> str:
    try:
        return loggable(str(msg.get("Subject", "")))
    except Exception:
        return ""


def _automatic(headers: Mapping[str, Sequence[str]]) -> str | None:
    """Which header marks the message as sent by a machine, or None."""
    for value in headers.get("auto-submitted", ()):
        if value.split("(")[0].strip().lower() != "no":
            return "Auto-Submitted"
    for value in headers.get("precedence", ()):
        if value.strip().lower() in _AUTOMATIC_PRECEDENCE:
            return "Precedence"
    for name in ("x-autoreply", "x-autorespond"):
        if name in headers:
            return name.title()
    return None


def _leaves(msg: Message) -> Iterator[Message]:
    """The non-multipart parts, depth first, bounded in depth and count."""
    stack: list[tuple[Message, int]] = [(msg, 0)]
    seen = 0
    while stack and seen < _MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        if part.get_content_maintype() == "message" and depth > 0:
            continue  # a forwarded message is someone else's words
        payload = part.get_payload()
        if isinstance(payload, list):
            if depth < _MAX_DEPTH:
                stack.extend((p, depth + 1) for p in reversed(payload) if isinstance(p, Message))
        else:
            yield part


def _decoded(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except (LookupError, UnicodeError, ValueError, TypeError):  # unknown or non-text codec
        return data.decode("utf-8", errors="replace")


def _reply_text(msg: Message) -> str:
    """The reply's own text: the first text/plain part, else the first HTML part as text."""
    plain: str | None = None
    markup: str | None = None
    try:
        for part in _leaves(msg):
            if part.get_content_disposition() == "attachment":
                continue
            kind = part.get_content_type()
            if kind == "text/plain":
                plain = _decoded(part)[:_TEXT_MAX]
                if plain.strip():
                    break
            elif kind == "text/html" and markup is None:
                markup = _decoded(part)[: _TEXT_MAX * 4]
    except Exception:  # damaged MIME: read what was found before the damage
        log.debug("unreadable MIME structure in an acknowledgement", exc_info=True)
    if plain is not None and plain.strip():
        return plain
    if markup is not None:
        return _html_text(markup)[:_TEXT_MAX]
    return ""


class _HtmlText(HTMLParser):
    """Text of an HTML mail, with each quoted original reduced to one ``>`` line."""

    _BLOCK = frozenset(
        {"br", "p", "div", "li", "tr", "table", "pre", "hr", "h1", "h2", "h3", "h4", "h5", "h6"}
    )
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._quoted = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag == "blockquote":
            if not self._quoted:
                self.parts.append("\n>\n")
            self._quoted += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag == "blockquote":
            self._quoted = max(0, self._quoted - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden and not self._quoted:
            self.parts.append(" ".join(data.splitlines()))


def _html_text(markup: str) -> str:
    parser = _HtmlText()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # html.parser is lenient; keep whatever it read if it does give up
        log.debug("unreadable HTML in an acknowledgement", exc_info=True)
    return "".join(parser.parts)
