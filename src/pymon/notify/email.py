"""The e-mail channel: one message per notice, threaded per incident, sent over SMTP.

Every message of an incident replies to the incident's first problem notice
(``In-Reply-To``/``References``), so a mail client shows an incident as one
thread. ``Message-ID``, ``Reply-To`` (``ack+<token>@...``) and ``X-Pymon-Token``
carry the incident's acknowledgement token, so a reply finds its incident (see
:mod:`pymon.notify.tokens`). ``Auto-Submitted: auto-generated`` (RFC 3834) keeps
vacation responders from answering.

The SMTP conversation itself is in ``notify/smtp.py``; a notice's runs in the
courier process (``notify/courier.py``).
"""

from __future__ import annotations

import asyncio
import logging
from email.headerregistry import BaseHeader, HeaderRegistry, UniqueUnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP, Policy
from email.utils import formatdate

from pymon.config.schema import EmailChannel
from pymon.model import Notice
from pymon.notify import tokens
from pymon.notify.base import NoticeContext
from pymon.notify.courier import deliver
from pymon.notify.smtp import mail_line
from pymon.notify.templates import Templates

__all__ = ["SUBJECT_MAX", "EmailSender", "subject"]

log = logging.getLogger("pymon.notify")

#: Longest subject in characters (before encoding); longer ones end in an ellipsis.
SUBJECT_MAX = 200
# Our own X- headers hold operator- or target-controlled text; bound them well
# below the 998-byte line limit even after RFC 2047 encoding.
_HEADER_VALUE_MAX = 300


# BaseHeader is the base the registry adds at run time; typeshed's max_count of the
# two differs in width only.
class _Subject(UniqueUnstructuredHeader, BaseHeader):  # type: ignore[misc]
    """The Subject header, folded after its first words, never right after ``Subject:``.

    The standard library moves a value that does not fit beside ``Subject: `` but
    would fit on a line of its own (70 to 77 characters) whole onto the next line:
    ``Subject:\\r\\n [ACME] FAILED: ...``, which some readers show with a leading
    space. This header splits such a value at its last space that fits instead.
    The header object travels with the message, so the fold holds whatever policy
    flattens it (aiosmtplib's own, SMTPUTF8 included).
    """

    def fold(self, *, policy: Policy) -> str:
        """The header as ``Subject: value`` lines, each ending in ``policy.linesep``."""
        folded = super().fold(policy=policy)
        end = policy.linesep
        value = str(self)
        if folded != f"{self.name}:{end} {value}{end}":
            return folded  # folded well already, or encoded: not text to split here
        room = (policy.max_line_length or len(folded)) - len(f"{self.name}: ")
        cut = value.rfind(" ", 0, room + 1)
        if cut <= 0:
            return folded  # its first word alone is too long to go beside the name
        return f"{self.name}: {value[:cut]}{end} {value[cut + 1 :]}{end}"


_HEADERS = HeaderRegistry()
_HEADERS.map_to_type("subject", _Subject)
# CRLF line ends, and bodies in quoted-printable or base64 rather than raw 8-bit:
# a relay that does not offer 8BITMIME must still carry them intact.
_POLICY = SMTP.clone(cte_type="7bit", header_factory=_HEADERS)


def subject(notice: Notice, ctx: NoticeContext) -> str:
    """The one-line headline of a notice: ``[<organization or host>] STATUS: service -
    message``, at most :data:`SUBJECT_MAX` characters. The e-mail's subject, and the
    title or summary on the channels that have one (apprise, PagerDuty, Opsgenie)."""
    origin = mail_line(ctx.organization or ctx.host, 60)
    status = notice.status.value.upper()
    line = f"[{origin}] {status}: {mail_line(notice.service)} - {mail_line(notice.message)}"
    return mail_line(line, SUBJECT_MAX)


class EmailSender:
    """The ``email`` channel named ``name``: composes a notice and hands it to SMTP."""

    def __init__(self, name: str, config: EmailChannel, templates: Templates) -> None:
        self.name = name
        self.config = config
        self.templates = templates
        self._domain = config.from_.rpartition("@")[2]

    def compose(self, notice: Notice, ctx: NoticeContext) -> EmailMessage:
        """The message for ``notice``, ready to send. No I/O beyond reading templates;
        the same notice and context give the same headers and text (only the MIME
        boundary differs), so a retry is the same e-mail to its reader.

        Raises :class:`DeliveryError` (permanent) when a template is broken.
        """
        text = self.templates.render("email", "txt", notice=notice, ctx=ctx)
        html = self.templates.render("email", "html", notice=notice, ctx=ctx)
        status = notice.status.value.upper()
        message = EmailMessage(policy=_POLICY)
        message["Subject"] = subject(notice, ctx)
        message["From"] = self.config.from_
        message["To"] = ", ".join(self.config.to)
        # The notice's time, not the send time: a retry carries the same Date, and
        # the body gives the same time.
        message["Date"] = formatdate(notice.at, usegmt=True)
        message["Message-ID"] = self._message_id(notice.key, ctx)
        if notice.incident is not None:
            root = tokens.thread_root_key(notice.incident)
            if notice.key != root:
                root_id = self._message_id(root, ctx)
                message["In-Reply-To"] = root_id
                message["References"] = root_id
        if ctx.ack_address:
            message["Reply-To"] = ctx.ack_address
        message["Auto-Submitted"] = "auto-generated"
        # Exchange ignores Auto-Submitted; this keeps its out-of-office replies away.
        message["X-Auto-Response-Suppress"] = "All"
        message["X-Pymon-Service"] = mail_line(ctx.service_uri, _HEADER_VALUE_MAX)
        message["X-Pymon-Status"] = status
        if notice.incident is not None:
            message["X-Pymon-Incident"] = mail_line(notice.incident, _HEADER_VALUE_MAX)
        if ctx.ack_token:
            message["X-Pymon-Token"] = ctx.ack_token
        message["X-Pymon-Notice"] = mail_line(notice.key, _HEADER_VALUE_MAX)
        message.set_content(text, subtype="plain", charset="utf-8")
        message.add_alternative(html, subtype="html", charset="utf-8")
        return message

    async def send(self, notice: Notice, ctx: NoticeContext) -> None:
        """Compose ``notice`` and hand it to the SMTP server; DeliveryError when it fails."""
        # Rendering may read template files and takes a while for big ones: off the loop.
        message = await asyncio.to_thread(self.compose, notice, ctx)
        # In the courier process: the 250 is read, and journaled, even if this
        # process is killed meanwhile.
        await deliver(self.config, message, receipt=ctx.receipt, accepted=ctx.accepted)
        log.debug("e-mail %s: sent %s to %s", self.name, notice.key, ", ".join(self.config.to))

    async def close(self) -> None:
        """Nothing to release: each send opens and closes its own SMTP session."""

    def _message_id(self, key: str, ctx: NoticeContext) -> str:
        return tokens.message_id(key, self.name, ctx.ack_token, self._domain)
