"""The SMTP server that takes acknowledgements: operators reply to an alert e-mail.

Every e-mail notice carries the incident's token (see :mod:`pymon.notify.tokens`).
A reply that keeps it, from an authorized sender, acknowledges the incident; its
first own line may instead say ``unack`` or ``maint 2h``. The server runs aiosmtpd's
SMTP protocol on the daemon's own event loop; it is not a relay and takes mail for
one address (and its ``+token`` forms) only. Whatever arrives gets a clear SMTP
answer: a broken message is refused, never a crash. Tokens are never logged.

The package holds:

``server.py``
    :class:`AckServer`: the SMTP sessions, their limits, and each message's answer.
``message.py``
    reading a message (any shape, any damage) into what the server needs, the
    tokens it carries included.
``request.py``
    what a reply asks for (:class:`AckRequest`, :func:`parse_command`), who may ask
    (:func:`authorized`), and who carries it out (:class:`AckTarget`).
``confirm.py``
    the confirmation e-mail sent back in the sender's thread.
``text.py``
    a human's words on one line, and text made safe to log.
"""

from __future__ import annotations

from pymon.notify.acks.request import AckRequest, AckTarget, Action, authorized, parse_command
from pymon.notify.acks.server import AckServer

__all__ = ["AckRequest", "AckServer", "AckTarget", "Action", "authorized", "parse_command"]
