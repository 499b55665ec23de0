"""What a reply asks for and who may ask: the request (:class:`AckRequest`), whoever
carries it out (:class:`AckTarget`), whether a sender is authorized
(:func:`authorized`), and the command in a reply's own text (:func:`parse_command`:
``unack``, ``maint 2h``, else an acknowledgement with the line as its comment).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from pymon.config.windows import MAX_SPAN
from pymon.durations import parse_duration
from pymon.model import Incident
from pymon.notify.acks.text import human_line

__all__ = [
    "DONE",
    "AckRequest",
    "AckTarget",
    "Action",
    "authorized",
    "done_text",
    "parse_command",
]

Action = Literal["ack", "unack", "maint"]

#: What each action did, in words.
DONE = {"ack": "acknowledged", "unack": "acknowledgement withdrawn", "maint": "maintenance"}

_COMMENT_MAX = 500
_ATTRIBUTION_MAX = 400  # characters; longer lines are words, and cheaper not to scan
_LEAD = ":;,.-\u2013\u2014 \t"  # what people put between "ack" and their words
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # all but \t \n \r
_SENDER = re.compile(r"[!-?A-~]+@[!-?A-~]+")  # printable ASCII, no space, exactly one "@"
_ATTRIBUTION = re.compile(
    r"^(on|am|le|el|op)\s.*\b(wrote|schrieb|a\s+écrit|escribió|schreef)\b.*:$", re.I
)
_ORIGINAL = re.compile(
    r"^(-{2,}\s*original message\s*-{2,}|-{2,}\s*forwarded message\s*-{2,}|_{10,})$", re.I
)


@dataclass(frozen=True, slots=True)
class AckRequest:
    """What an authorized reply asks for. ``sender`` is the From address, lowercase;
    ``duration`` is seconds, for ``maint`` only."""

    action: Action
    incident: str
    service: str
    sender: str
    comment: str
    duration: float | None


class AckTarget(Protocol):
    """Whoever carries acknowledgements out (the notifier, through the engine's port)."""

    async def incident_for_token(self, token: str) -> Incident | None:
        """The open incident with this token, else None."""
        ...

    async def act(self, request: AckRequest) -> str:
        """Carry ``request`` out and return a one-line summary; raise
        :class:`~pymon.errors.PymonError` with the reason to refuse it."""
        ...


def authorized(sender: str, patterns: Sequence[str]) -> bool:
    """Whether ``sender`` may acknowledge: a pattern is a full address (any case) or
    ``@domain`` / ``*@domain`` for every address of exactly that domain.

    Only plain printable-ASCII addresses with one ``@`` qualify, so a quoted local
    part (``"a@b"@evil``) or control characters can never match a domain pattern.
    """
    address = sender.strip().lower()
    if _SENDER.fullmatch(address) is None:
        return False
    domain = address.rpartition("@")[2]
    for raw in patterns:
        pattern = raw.strip().lower()
        if pattern.startswith("*@"):
            pattern = pattern[1:]
        if pattern.startswith("@"):
            if pattern[1:] and pattern[1:] == domain:
                return True
        elif pattern and pattern == address:
            return True
    return False


def parse_command(text: str) -> tuple[Action, float | None, str]:
    """The command of a reply's text: ``(action, duration, comment)``.

    The command line is the first non-empty line that is not quoted (``>``), not an
    attribution (``On ... wrote:``); nothing after a signature (``-- ``) or an
    original-message separator counts. ``unack`` and ``maint <duration>`` are
    commands; anything else acknowledges, with that line as the comment. The comment
    runs on over the following lines up to the first quote, attribution or
    signature, and is capped at 500 characters. Raises ValueError for ``maint``
    without a valid duration.
    """
    lines = _CONTROL.sub(" ", text).lstrip("\ufeff \t\r\n").splitlines()
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        if _signature_or_original(lines, index):
            return "ack", None, ""
        if not line or line.startswith(">"):
            index += 1
        elif span := _attribution(lines, index):
            index += span
        else:
            break
    else:
        return "ack", None, ""
    line = lines[index].strip().lstrip("\ufeff")
    head, rest = [*line.split(None, 1), "", ""][:2]
    word = head.lower().rstrip(":,.!;")
    action: Action = "ack"
    duration: float | None = None
    if word == "unack":
        action = "unack"
    elif word == "maint":
        action = "maint"
        spec, rest = [*rest.split(None, 1), "", ""][:2]
        duration = _maint_duration(spec)
    comment = [rest.strip().lstrip(_LEAD) if word in ("ack", "unack", "maint") else line]
    for follow in range(index + 1, len(lines)):
        if sum(map(len, comment)) > _COMMENT_MAX or _ends_comment(lines, follow):
            break
        comment.append(lines[follow].strip())
    joined = " ".join(comment)[: _COMMENT_MAX * 4]
    return action, duration, human_line(joined, _COMMENT_MAX)


def _maint_duration(spec: str) -> float:
    if not spec:
        raise ValueError("maint needs a duration, e.g. 'maint 2h'")
    try:
        seconds = parse_duration(spec)
    except ValueError as exc:
        raise ValueError(f"maint: {exc}") from None
    if seconds <= 0:
        raise ValueError("maint needs a duration above zero, e.g. 'maint 2h'")
    if seconds > MAX_SPAN:
        # The bound the API and the shell put on a window, so all of them answer alike.
        raise ValueError("maint: must be at most 366 days")
    return seconds


def _attribution(lines: Sequence[str], index: int) -> int:
    """How many lines (0, 1 or 2) the attribution starting at ``index`` spans."""
    line = lines[index].strip()
    if len(line) > _ATTRIBUTION_MAX:
        return 0
    if _ATTRIBUTION.match(line):
        return 1
    if index + 1 >= len(lines):
        return 0
    # Clients wrap long attributions: "On Mon, 1 Jan 2024, Alice <alice@" / "x.org> wrote:".
    following = lines[index + 1].strip()[:_ATTRIBUTION_MAX]
    if _ATTRIBUTION.match(following) or not _ATTRIBUTION.match(f"{line} {following}"):
        return 0
    return 2


def _signature_or_original(lines: Sequence[str], index: int) -> bool:
    line = lines[index].strip()
    if line == "--" or _ORIGINAL.match(line):
        return True
    # Outlook quotes the original unmarked below a "From: ... / Sent: ..." block.
    return (
        line.lower().startswith("from:")
        and index + 1 < len(lines)
        and lines[index + 1].strip().lower().startswith(("sent:", "date:"))
    )


def _ends_comment(lines: Sequence[str], index: int) -> bool:
    return (
        lines[index].strip().startswith(">")
        or _attribution(lines, index) > 0
        or _signature_or_original(lines, index)
    )


def done_text(request: AckRequest) -> str:
    """What carrying ``request`` out did, in words: ``maintenance for 2h``."""
    done = DONE[request.action]
    if request.duration is not None:
        done += f" for {_duration_text(request.duration)}"
    return done


def _duration_text(seconds: float) -> str:
    rest = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or f"{seconds:g}s"
