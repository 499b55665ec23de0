"""Everything notices need at run time, wired once: channels, the outbox, incident
tokens and the acknowledgement server. The composition root owns one :class:`Notifier`;
it acts on the engine only through the engine's port (acknowledgements by reply)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from pymon.clock import Clock
from pymon.config.load import SECRET_KEYS
from pymon.config.schema import (
    AppriseChannel,
    CommandChannel,
    Config,
    EmailChannel,
    LogChannel,
    OpsgenieChannel,
    PagerDutyChannel,
    ServiceConfig,
    WebhookChannel,
)
from pymon.config.windows import one_off
from pymon.engine.maintenance import literal_pattern
from pymon.engine.ports import AckFigures, EnginePort, OutboxFigures
from pymon.errors import PymonError
from pymon.model import Ack, Incident, Notice
from pymon.notify.acks import AckRequest, AckServer
from pymon.notify.base import Channel, NoticeContext
from pymon.notify.command import CommandSender
from pymon.notify.email import EmailSender
from pymon.notify.journal import Journal, journal_path
from pymon.notify.log import LogSender
from pymon.notify.opsgenie import OpsgenieSender
from pymon.notify.outbox import Outbox, Publish
from pymon.notify.pagerduty import PagerDutySender
from pymon.notify.smtp import send_message
from pymon.notify.templates import Templates, template_dir
from pymon.notify.tokens import AckTokens
from pymon.notify.webhook import WebhookSender
from pymon.store.base import Store

__all__ = ["Channels", "Notifier", "build_channels", "service_url"]

log = logging.getLogger("pymon.notify")

HOST = socket.gethostname()
# Check keys that may hold credentials or private payloads: never shown in notices.
_PRIVATE_KEYS = SECRET_KEYS | {"basic_auth", "headers", "body", "json_body", "username"}


#: Every channel's sender by name, and each channel's timeout (seconds).
Channels = tuple[dict[str, Channel], dict[str, float]]


def build_channels(config: Config) -> Channels:
    """A sender for every configured channel, and each channel's timeout (seconds)."""
    templates = Templates(template_dir(config))
    problems = templates.check()
    if problems:
        raise PymonError("e-mail templates are broken: " + "; ".join(problems))
    channels: dict[str, Channel] = {}
    timeouts: dict[str, float] = {}
    for name, spec in config.notifications.channels.items():
        if isinstance(spec, EmailChannel):
            channels[name], timeouts[name] = EmailSender(name, spec, templates), spec.timeout
        elif isinstance(spec, WebhookChannel):
            channels[name], timeouts[name] = WebhookSender(name, spec), spec.timeout
        elif isinstance(spec, CommandChannel):
            channels[name], timeouts[name] = CommandSender(name, spec), spec.timeout
        elif isinstance(spec, LogChannel):
            channels[name], timeouts[name] = LogSender(name, spec), 5.0
        elif isinstance(spec, AppriseChannel):
            # apprise and its plugins take ~0.3 s to import: only configs that use it pay.
            from pymon.notify.apprise import AppriseSender

            channels[name], timeouts[name] = AppriseSender(name, spec, templates), spec.timeout
        elif isinstance(spec, PagerDutyChannel):
            channels[name], timeouts[name] = PagerDutySender(name, spec), spec.timeout
        elif isinstance(spec, OpsgenieChannel):
            channels[name], timeouts[name] = OpsgenieSender(name, spec, templates), spec.timeout
    return channels, timeouts


def service_url(config: Config, name: str) -> str:
    """The link to a service's page in notices (``web.public_url`` or ``web.listen`` based)."""
    return f"{config.web.url()}/services/{quote(name, safe='')}"


class Notifier:
    """Delivers notices and takes acknowledgements by reply for one daemon.

    ``serve_acks`` False: no acknowledgement server here even with
    ``acknowledgements.listen`` (another local worker runs it); notices still carry
    the reply address and token.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        *,
        publish: Publish | None = None,
        owner: str | None = None,
        serve_acks: bool = True,
    ) -> None:
        self.config = config
        self._serve_acks = serve_acks
        self._store = store
        self._clock = clock
        self._port: EnginePort | None = None
        self.channels, timeouts = build_channels(config)
        # The outbox's claims and journal are this node's (the instance name, alone).
        owner = owner or config.instance.name
        path = journal_path(config.storage.url, owner)
        self._journal = Journal(path, owner) if path is not None else None
        self.outbox = Outbox(
            store,
            self.channels,
            self.context,
            config.notifications.delivery,
            timeouts=timeouts,
            clock=clock,
            owner=owner,
            publish=publish,
            journal=self._journal,
        )
        self.tokens: AckTokens | None = None
        self.ack_server: AckServer | None = None
        self.ack_port: int | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, port: EnginePort) -> None:
        """Load the token key, start the outbox and (if configured) the ack server,
        which acts on the engine through ``port``."""
        self._port = port
        key = await self._store.keep_meta("ack_key", secrets.token_hex(32))
        self.tokens = AckTokens(bytes.fromhex(key))
        acks = self.config.acknowledgements
        if acks.listen is not None and self._serve_acks:
            self.ack_server = AckServer(
                acks,
                self.tokens,
                self,
                hostname=self.config.instance.name,
                confirm=self._confirm if acks.confirm else None,
            )
            self.ack_port = await self.ack_server.start()
            log.info("acknowledgements: listening for replies on %s", acks.listen)
        self._task = asyncio.create_task(self.outbox.run(), name="outbox")

    async def stop(self) -> None:
        """Stop taking replies, finish attempts in progress, close the channels."""
        if self.ack_server is not None:
            await self.ack_server.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._journal is not None:
            self._journal.close()
        for channel in self.channels.values():
            await channel.close()

    def apply(self, config: Config, channels: Channels | None) -> list[Channel]:
        """Run with ``config`` from now on (a reload), and with ``channels`` when they
        were rebuilt; returns the senders replaced, for the caller to close."""
        self.config = config
        if channels is None:
            return []
        stale = list(self.channels.values())
        self.channels = channels[0]
        self.outbox.use(channels[0], channels[1])
        return stale

    def outbox_figures(self) -> OutboxFigures:
        """The outbox's counters since start."""
        stats = self.outbox.stats
        return OutboxFigures(stats.sent, stats.failed, stats.gave_up, self.outbox.in_flight)

    def ack_figures(self) -> AckFigures | None:
        """The acknowledgement server's counters, None when it does not run."""
        acks = self.ack_server
        if acks is None:
            return None
        return AckFigures(acks.port, acks.accepted, acks.refused, acks.failed)

    def context(self, notice: Notice, channel: str, attempt: int) -> NoticeContext:
        """What ``channel`` renders ``notice`` with at this ``attempt``."""
        instance = self.config.instance
        service = self.config.service(notice.service)
        token = address = None
        acks = self.config.acknowledgements
        if notice.incident is not None and self.tokens is not None and acks.listen is not None:
            token = self.tokens.token(notice.incident)
            address = self.tokens.address(acks.address, notice.incident)
        return NoticeContext(
            instance=instance.name,
            organization=instance.organization,
            host=HOST,
            service_type=service.type if service is not None else "unknown",
            service_uri=f"pymon://{quote(instance.name, safe='')}/{quote(notice.service, safe='')}",
            service_url=service_url(self.config, notice.service),
            tags=tuple(service.tags) if service is not None else (),
            check=_public_check(service),
            ack_token=token,
            ack_address=address,
            attempt=attempt,
        )

    # -- the AckTarget the acknowledgement server talks to ----------------------------

    async def incident_for_token(self, token: str) -> Incident | None:
        """The open incident whose token is ``token``, if any."""
        if self.tokens is None or self._port is None:
            return None
        for incident in await self._port.open_incidents():
            if self.tokens.valid(incident.id, token):
                return incident
        return None

    async def act(self, request: AckRequest) -> str:
        """Do what a reply asked; the summary goes back to its sender."""
        port = self._port
        assert port is not None, "started"
        view = await port.service(request.service)
        current = None if view is None else view.incident
        if current is None or current.id != request.incident or not current.open:
            raise PymonError(f"the incident of {request.service} is over")
        if request.action == "unack":
            await port.unacknowledge(request.service, request.sender)
            return f"{request.service}: acknowledgement taken back"
        if request.action == "maint":
            assert request.duration is not None
            now = self._clock.time()
            window = one_off(
                start=datetime.fromtimestamp(now, UTC),
                end=datetime.fromtimestamp(now + request.duration, UTC),
                services=[literal_pattern(request.service)],
                comment=request.comment,
                author=request.sender,
                name=f"by reply from {request.sender}",
            )
            await port.add_maintenance(window)
            until = datetime.fromtimestamp(now + request.duration, UTC).strftime("%H:%M UTC")
            return f"{request.service}: in maintenance until {until}"
        incident = await port.acknowledge(request.service, request.sender, request.comment)
        assert isinstance(incident.ack, Ack)
        return f"{request.service}: {incident.status.value} acknowledged by {request.sender}"

    async def _confirm(self, message: EmailMessage) -> None:
        spec = self._reply_channel()
        if spec is not None:
            await send_message(spec, message)

    def _reply_channel(self) -> EmailChannel | None:
        channels = self.config.notifications.channels
        wanted = self.config.acknowledgements.reply_channel
        if wanted is not None:
            chosen = channels.get(wanted)
            return chosen if isinstance(chosen, EmailChannel) else None
        return next((c for c in channels.values() if isinstance(c, EmailChannel)), None)


def _public_check(service: ServiceConfig | None) -> Mapping[str, Any]:
    """The check's keys fit to show in a notice: no secrets, no credentials in URLs."""
    if service is None:
        return {}
    shown: dict[str, Any] = {}
    for key, value in service.check.model_dump(mode="json", by_alias=True).items():
        if key in _PRIVATE_KEYS or value is None:
            continue
        if isinstance(value, str) and "://" in value and "@" in value:
            value = _without_credentials(value)
        shown[key] = value
    return shown


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))
