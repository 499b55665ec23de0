"""What every channel shares: the context a notice is rendered with and the send contract."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pymon.errors import PymonError
from pymon.model import Notice

if TYPE_CHECKING:
    # Typing only: a helper process that imports this must not pay for the journal's.
    from pymon.notify.journal import Receipt

__all__ = ["Channel", "DeliveryError", "NoticeContext"]


class DeliveryError(PymonError):
    """A channel could not deliver a notice; the message says why (shown to operators).

    ``permanent`` means retrying cannot help (e.g. the server refused every recipient
    with a 5xx reply); the outbox then gives up at once instead of backing off.
    ``retry_after`` is how many seconds the receiver asked to be left alone (an HTTP
    ``Retry-After``): the outbox retries no sooner (up to ``delivery.max_backoff``).
    """

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class NoticeContext:
    """What a channel knows about a notice beyond the notice itself.

    ``instance`` and ``organization`` come from the config's ``instance``; ``host``
    is the machine pymon runs on. ``service_uri`` is ``pymon://<instance>/<service>``;
    ``service_url`` links to the service in the web UI. ``check`` holds the
    service's check keys with secrets removed (``url``, ``host``...). ``ack_token``
    is the incident's secret for acknowledging by reply, and ``ack_address`` the
    address replies go to (``ack+<token>@domain``); both None when
    acknowledgements by mail are off or the notice has no incident. ``attempt``
    counts deliveries of this notice to this channel, 1 for the first. ``accepted``,
    when given, is called by the channel the moment the receiver has taken the
    notice (the SMTP server's 250), before any goodbye: the outbox records the
    delivery from there, so a crash during the goodbye cannot send it again.
    ``receipt``, when given, is where a channel that talks from another process
    (the e-mail courier) has that process journal the acceptance itself, so it is
    kept even if pymon is killed while the receiver answers.
    """

    instance: str
    organization: str
    host: str
    service_type: str
    service_uri: str
    service_url: str
    tags: tuple[str, ...] = ()
    check: Mapping[str, Any] = field(default_factory=dict)
    ack_token: str | None = None
    ack_address: str | None = None
    attempt: int = 1
    accepted: Callable[[], None] | None = field(default=None, compare=False, repr=False)
    receipt: Receipt | None = field(default=None, compare=False, repr=False)


class Channel(Protocol):
    """One configured way of reaching people. ``send`` returns once the notice was
    handed over (the SMTP server said 250, the webhook 2xx, the command exited 0)
    and raises :class:`DeliveryError` with the reason otherwise. It must finish
    within the channel's own timeout."""

    async def send(self, notice: Notice, ctx: NoticeContext) -> None:
        """Deliver ``notice`` once."""
        ...

    async def close(self) -> None:
        """Release connections or sessions held between sends."""
        ...
