"""The confirmation e-mail: a reply in the sender's own thread saying what was done
(which service, which incident, by whom, with what comment), marked as sent by a
machine so that no auto-responder answers it.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from pymon.notify.acks.message import Reading
from pymon.notify.acks.request import DONE, AckRequest, done_text
from pymon.notify.acks.text import human_line

__all__ = ["confirmation"]

_MESSAGE_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,250}>")


def confirmation(
    reading: Reading, request: AckRequest, summary: str, *, sender: str, domain: str
) -> EmailMessage:
    """The reply from ``sender`` (the acknowledgement address) to the message read as
    ``reading``, saying that ``request`` was carried out (``summary``, the target's
    one line); its Message-ID is in ``domain``."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = request.sender
    subject = human_line(reading.subject, 200) or f"{request.service}: {DONE[request.action]}"
    if not re.match(r"re\s*:", subject, re.I):
        subject = f"Re: {subject}"
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid("pymon-ack", domain=domain)
    ids = [m for v in reading.headers["message-id"] for m in _MESSAGE_ID.findall(v)][:1]
    if ids:
        earlier = [m for v in reading.headers["references"] for m in _MESSAGE_ID.findall(v)]
        message["In-Reply-To"] = ids[0]
        message["References"] = " ".join([*earlier[-20:], ids[0]])
    message["Auto-Submitted"] = "auto-replied"
    message["X-Pymon-Service"] = human_line(request.service)
    message["X-Pymon-Incident"] = human_line(request.incident)
    lines = [
        human_line(summary),
        "",
        f"Done:     {done_text(request)}",
        f"Service:  {request.service}",
        f"Incident: {request.incident}",
        f"By:       {request.sender}",
    ]
    if request.comment:
        lines.append(f"Comment:  {request.comment}")
    message.set_content("\n".join(lines) + "\n")
    return message
