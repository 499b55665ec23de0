"""Pydantic models of the config file.

Services are validated in two parts (see ``load.py``): the keys every service has
(``ServiceCommon``) and the keys of its check type, validated by the spec model the
check registry names for that ``type``. So a new check type needs no change here.

The keys a service inherits are defined once, in ``Inheritable``, each with its merge
rule (``inheritance.py``); ``Defaults`` and ``ServiceCommon`` both take them from there.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from pymon.checks.spec import CheckSpec, MetricThresholds, Ranged, StrictModel
from pymon.config.inheritance import PER_ENTRY, PER_FIELD, REPLACE, REPLACE_UNLESS_NULL, UNION
from pymon.config.pages import MAX_PAGES, StatusPage
from pymon.config.web import (
    WebAuthConfig,
    WebConfig,
    WebToken,
    WebUser,
    check_host_port,
    split_host_port,
)
from pymon.config.windows import ConfigWindows
from pymon.durations import Duration, parse_duration
from pymon.model import Status

__all__ = [
    "DEFAULT_FLAP_GUARD",
    "AcknowledgementsConfig",
    "AppriseChannel",
    "ChannelConfig",
    "CheckSpec",
    "ClusterConfig",
    "CommandChannel",
    "Config",
    "Defaults",
    "DeliveryConfig",
    "Duration",
    "EmailChannel",
    "FlapDetection",
    "FlapGuard",
    "IncidentServiceChannel",
    "Inheritable",
    "InstanceConfig",
    "LogChannel",
    "LogConfig",
    "MetricThresholds",
    "NodeConfig",
    "NotificationsConfig",
    "OpsgenieChannel",
    "PagerDutyChannel",
    "Ranged",
    "ReloadConfig",
    "Route",
    "SchedulerConfig",
    "ServiceCommon",
    "ServiceConfig",
    "StatusPage",
    "StorageConfig",
    "WebAuthConfig",
    "WebConfig",
    "WebToken",
    "WebUser",
    "WebhookChannel",
    "parse_duration",
    "split_host_port",
]

DEFAULT_FLAP_GUARD: Mapping[Status, int] = {
    Status.OK: 2,
    Status.WARN: 3,
    Status.ERROR: 3,
    Status.FAILED: 3,
    Status.UNKNOWN: 3,
}


class FlapGuard(StrictModel):
    """Results in a row before a status is confirmed (Nagios's max check attempts)."""

    ok: int = Field(default=DEFAULT_FLAP_GUARD[Status.OK], ge=1)
    warn: int = Field(default=DEFAULT_FLAP_GUARD[Status.WARN], ge=1)
    error: int = Field(default=DEFAULT_FLAP_GUARD[Status.ERROR], ge=1)
    failed: int = Field(default=DEFAULT_FLAP_GUARD[Status.FAILED], ge=1)
    unknown: int = Field(default=DEFAULT_FLAP_GUARD[Status.UNKNOWN], ge=1)

    def count_for(self, status: Status) -> int:
        """How many results in a row confirm ``status`` (1 for disabled)."""
        return int(getattr(self, status.value, 1))


class FlapDetection(StrictModel):
    """Flap detection over the last ``window`` results; see docs/states.md.

    A service starts flapping when ``changes`` confirmed changes fall within the
    window (0 turns this off), or when the window is full and the weighted percent of
    state changes reaches ``high`` (as Nagios does). It stops when the window holds
    no confirmed change and the percent is below ``low``.
    """

    enabled: bool = True
    window: int = Field(default=21, ge=3, le=100)
    changes: int = Field(default=3, ge=0, le=100)
    low: float = Field(default=20.0, ge=0, le=100)
    high: float = Field(default=30.0, ge=0, le=100)

    @model_validator(mode="after")
    def _consistent(self) -> FlapDetection:
        if self.low > self.high:
            raise ValueError(f"low ({self.low:g}) must not be above high ({self.high:g})")
        if self.changes == 1:
            # One confirmed change is every incident's start: it says nothing of flapping.
            raise ValueError("changes must be 0 (off) or at least 2")
        if self.changes > self.window:
            raise ValueError(
                f"changes ({self.changes}) must not be above window ({self.window}): "
                "the window could never hold them"
            )
        return self


class Inheritable(StrictModel):
    """The keys a service inherits, each with its merge rule (see ``inheritance.py``).

    From weakest to strongest: these defaults (for ``thresholds``, the check type's),
    ``defaults``, ``defaults.<type>``, the service. The one definition of these keys:
    ``Defaults`` and ``ServiceCommon`` take their fields from here, the loader its merge.
    """

    interval: Annotated[Duration, REPLACE] = Field(default=60.0, gt=0)
    retry_interval: Annotated[Duration | None, REPLACE] = Field(default=None, gt=0)
    timeout: Annotated[Duration, REPLACE] = Field(default=10.0, gt=0)
    # null means "not set" (inherit); false means "nobody".
    notify: Annotated[list[str] | Literal[False] | None, REPLACE_UNLESS_NULL] = None
    thresholds: Annotated[dict[str, MetricThresholds], PER_ENTRY] = Field(default_factory=dict)
    flap_guard: Annotated[FlapGuard, PER_FIELD] = Field(default_factory=FlapGuard)
    flap_detection: Annotated[FlapDetection, PER_FIELD] = Field(default_factory=FlapDetection)
    tags: Annotated[list[str], UNION] = Field(default_factory=list)
    # The owner's consent to public badges (docs/status-pages.md#badges).
    badge: Annotated[bool, REPLACE] = False
    # The uptime target in percent (docs/reports.md); null on a service: no target.
    sla: Annotated[float | None, REPLACE] = Field(default=None, gt=0, le=100)
    # Checked from each of these locations; a problem when ``quorum`` agree
    # (docs/states.md, "Locations"). None: a majority of those listed.
    locations: Annotated[list[str], REPLACE] = Field(default_factory=list, max_length=32)
    quorum: Annotated[Annotated[int, Field(ge=1)] | Literal["all"] | None, REPLACE] = None
    notify_partial: Annotated[bool, REPLACE] = False


class Defaults(Inheritable):
    """``defaults``: the inheritable keys every service gets unless it sets its own.

    Besides them, a section named after a check type (``http:``, ``tcp:``...) holds
    defaults for that type's services: its own keys and inheritable ones. The loader
    applies them; ``Config.defaults`` keeps each such section as written, as an extra.
    """

    model_config = ConfigDict(extra="allow", frozen=True)


class ServiceCommon(Inheritable):
    """The keys every service has, whatever its check type: the inheritable ones and these."""

    name: str = Field(min_length=1, max_length=200)
    type: str
    description: str = ""
    enabled: bool = True
    depends_on: list[str] = Field(default_factory=list)

    #: The order of the keys in docs/configuration.md, and in issues (``allowed: ...``,
    #: several issues on one line); pydantic puts the inherited fields first.
    key_order: ClassVar[tuple[str, ...]] = (
        *("name", "type", "description", "interval", "retry_interval", "timeout", "enabled"),
        *("notify", "thresholds", "flap_guard", "flap_detection", "depends_on", "tags"),
        *("badge", "sla", "locations", "quorum", "notify_partial"),
    )


class ServiceConfig(ServiceCommon):
    """A fully validated service: common keys plus ``check``, its type's spec.

    The inheritable keys here are effective: merged over every level by their rules.
    """

    check: CheckSpec

    @property
    def retry_after(self) -> float:
        """How soon to check again while a change is unconfirmed (Nagios's retry interval).

        ``retry_interval`` if set, else a third of the interval but at least 1 s, and
        never longer than the interval.
        """
        wanted = self.retry_interval or max(1.0, self.interval / 3)
        return min(wanted, self.interval)


class InstanceConfig(StrictModel):
    """Who this pymon is: shown in pages, subjects and service URIs."""

    name: str = "pymon"
    organization: str = ""


class LogConfig(StrictModel):
    """Logging: Python's levels, to standard error."""

    level: Literal["debug", "info", "warning", "error", "critical"] = "info"


class StorageConfig(StrictModel):
    """Where state, history and events persist (SQLite file or PostgreSQL URL)."""

    url: str = "sqlite:///pymon-data/pymon.db"
    history: int = Field(default=1000, ge=1, le=1_000_000)
    flush_interval: Duration = Field(default=0.5, gt=0)
    #: How long hour and day buckets are kept (docs/uptime.md): a day to ten years.
    rollups: Duration = Field(default=400 * 86400.0, ge=86400.0, le=3650 * 86400.0)


class SchedulerConfig(StrictModel):
    """How many checks may run at once, over all services, and how many local worker
    processes (nodes) ``pymon run`` starts (``auto``: one per core)."""

    concurrency: int = Field(default=1000, ge=1, le=100_000)
    workers: int | Literal["auto"] = Field(default=1)

    @field_validator("workers")
    @classmethod
    def _workers_in_range(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 256:
            raise ValueError("workers must be 1 to 256, or auto")
        return value


class ClusterConfig(StrictModel):
    """How nodes share the services (docs/cluster.md): every service belongs to one of
    ``shards``; a node holds a shard while it renews its lease every ``heartbeat``;
    a lease not renewed for ``lease`` goes to another node."""

    heartbeat: Duration = Field(default=2.0, gt=0, le=3600)
    lease: Duration = Field(default=10.0, gt=0, le=86_400)
    shards: int = Field(default=256, ge=1, le=4096)

    @model_validator(mode="after")
    def _lease_outlasts_heartbeats(self) -> ClusterConfig:
        if self.lease < 2 * self.heartbeat:
            raise ValueError("lease must be at least twice the heartbeat")
        return self


class NodeConfig(StrictModel):
    """This node (docs/cluster.md): where it checks from. Left out of the config's
    checksum, so nodes of several locations run one config (``pymon run --location``
    overrides it)."""

    location: str = Field(default="", max_length=64)


class ReloadConfig(StrictModel):
    """How the daemon picks up edits of its config file (see docs/configuration.md, Reload)."""

    watch: bool = True


class LogChannel(StrictModel):
    """Writes each notice to pymon's own log (needs nothing; the default channel)."""

    type: Literal["log"] = "log"
    level: Literal["info", "warning", "error"] = "warning"
    acknowledgements: bool = False


class EmailChannel(StrictModel):
    """Sends each notice as an e-mail through an SMTP server (see docs/notifications.md).

    ``tls``: ``auto`` upgrades with STARTTLS when the server offers it, ``starttls``
    requires it, ``tls`` is TLS from the first byte (port 465), ``none`` never.
    """

    type: Literal["email"]
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=25, ge=1, le=65535)
    tls: Literal["auto", "none", "starttls", "tls"] = "auto"
    verify_tls: bool = True
    ca_file: str | None = None
    username: str | None = None
    password: str | None = None
    from_: str = Field(alias="from", min_length=3)
    to: list[str] = Field(min_length=1)
    timeout: Duration = Field(default=30.0, gt=0)
    acknowledgements: bool = False

    @field_validator("from_", "to")
    @classmethod
    def _check_addresses(cls, value: str | list[str]) -> str | list[str]:
        for address in [value] if isinstance(value, str) else value:
            if not _looks_like_address(address):
                raise ValueError(f"{address!r} is not an e-mail address (user@example.org)")
        return value


def _http_url(value: str) -> str:
    if re.match(r"https?://[^\s/]+", value) is None:
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


#: An http:// or https:// URL.
HttpUrl = Annotated[str, AfterValidator(_http_url)]


class WebhookChannel(StrictModel):
    """POSTs each notice as JSON; with ``secret``, signs the body (HMAC-SHA256)."""

    type: Literal["webhook"]
    url: HttpUrl
    secret: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = Field(default=10.0, gt=0)
    verify_tls: bool = True
    acknowledgements: bool = False


class CommandChannel(StrictModel):
    """Runs a program per notice: the notice in ``PYMON_*`` variables and as JSON on stdin.

    ``command`` is a list of arguments (no shell), or one string split like a shell
    would split it.
    """

    type: Literal["command"]
    command: Annotated[
        list[str],
        BeforeValidator(lambda v: shlex.split(v) if isinstance(v, str) else v),
        Field(min_length=1),
    ]
    timeout: Duration = Field(default=30.0, gt=0)
    env: dict[str, str] = Field(default_factory=dict)
    acknowledgements: bool = False


#: Most URLs one apprise channel may name (each is a request per notice).
APPRISE_MAX_URLS = 50
# Longest apprise URL taken: long enough for any service's tokens, short enough to bound.
_APPRISE_URL_MAX = 4096


def _apprise_url(url: str) -> str:
    # Imported here: apprise's plugin table is only needed once a config uses it.
    from apprise import Apprise

    # apprise logs a URL it cannot parse whole, token and all: keep it out of pymon's log.
    logging.getLogger("apprise").propagate = False
    if Apprise.instantiate(url) is None:
        # Never the URL itself: its path holds the service's token.
        scheme = url.partition("://")[0] if "://" in url else ""
        said = f"scheme {scheme[:20]!r}" if scheme else "no scheme://"
        raise ValueError(f"not a URL apprise can use ({said}; see apprise's list of services)")
    return url


#: One apprise URL, checked by apprise itself (unknown scheme, missing token...).
AppriseUrl = Annotated[
    str, Field(min_length=1, max_length=_APPRISE_URL_MAX), AfterValidator(_apprise_url)
]


class AppriseChannel(StrictModel):
    """Sends each notice through apprise to every URL in ``urls`` (Slack, Teams,
    Discord, Telegram, Matrix, ntfy, Gotify...): the e-mail's subject as the title,
    its text body as the body. The URLs carry the services' tokens: never shown."""

    type: Literal["apprise"]
    urls: list[AppriseUrl] = Field(min_length=1, max_length=APPRISE_MAX_URLS)
    timeout: Duration = Field(default=30.0, gt=0, le=600)
    acknowledgements: bool = False


#: PagerDuty's event severities.
PagerDutySeverity = Literal["critical", "error", "warning", "info"]
#: Opsgenie's alert priorities.
OpsgeniePriority = Literal["P1", "P2", "P3", "P4", "P5"]
#: Statuses a problem notice can carry, the keys of the severity and priority maps.
ProblemStatus = Literal["warn", "error", "failed", "unknown"]


class IncidentServiceChannel(StrictModel):
    """What the channels to incident services (PagerDuty, Opsgenie) share: they want
    acknowledgements by default, since an alert there has its own acknowledged state."""

    timeout: Duration = Field(default=10.0, gt=0, le=600)
    verify_tls: bool = True
    acknowledgements: bool = True


class PagerDutyChannel(IncidentServiceChannel):
    """PagerDuty's Events API v2: trigger, acknowledge and resolve one alert per incident
    (``dedup_key`` ``pymon:<instance>:<incident>``). ``severity`` maps pymon's problem
    statuses onto PagerDuty's; unmapped ones keep the defaults."""

    type: Literal["pagerduty"]
    routing_key: str = Field(min_length=1, max_length=256)
    api_url: HttpUrl = "https://events.pagerduty.com/v2/enqueue"
    severity: dict[ProblemStatus, PagerDutySeverity] = Field(default_factory=dict)


class OpsgenieChannel(IncidentServiceChannel):
    """Opsgenie's Alert API: create, acknowledge and close one alert per incident
    (``alias`` ``pymon:<instance>:<incident>``). ``priority`` maps pymon's problem
    statuses onto P1-P5; unmapped ones keep the defaults. ``api_url`` is
    ``https://api.eu.opsgenie.com`` for the EU instance."""

    type: Literal["opsgenie"]
    api_key: str = Field(min_length=1, max_length=256)
    api_url: HttpUrl = "https://api.opsgenie.com"
    priority: dict[ProblemStatus, OpsgeniePriority] = Field(default_factory=dict)


ChannelConfig = Annotated[
    LogChannel
    | EmailChannel
    | WebhookChannel
    | CommandChannel
    | AppriseChannel
    | PagerDutyChannel
    | OpsgenieChannel,
    Field(discriminator="type"),
]
"""One channel, chosen by its ``type``."""


def _looks_like_address(address: str) -> bool:
    # Deliberately loose: the SMTP server is the judge; this catches typos and
    # header injection (a newline in an address), not every RFC 5321 corner.
    return re.fullmatch(r"[^@\s<>,]+@[^@\s<>,]+", address) is not None


class DeliveryConfig(StrictModel):
    """How the outbox retries a notice that could not be delivered.

    The wait after the n-th failed attempt is ``backoff * 2**(n-1)``, at most
    ``max_backoff``; after ``give_up_after`` from the notice's time the delivery
    is marked failed for good (and stays visible in the API and log).
    """

    backoff: Duration = Field(default=10.0, gt=0)
    max_backoff: Duration = Field(default=600.0, gt=0)
    give_up_after: Duration = Field(default=86400.0, gt=0)
    concurrency: int = Field(default=10, ge=1, le=1000)


class Route(StrictModel):
    """Sends notices of services with any of ``tags`` (any service if empty) and one of
    ``statuses`` (any if empty) to ``channels``."""

    channels: list[str] = Field(min_length=1)
    statuses: list[Literal["ok", "warn", "error", "failed", "unknown"]] = Field(
        default_factory=list
    )
    tags: list[str] = Field(default_factory=list)


class NotificationsConfig(StrictModel):
    """When to bother people, and whom: the policy the rules apply to every incident."""

    enabled: bool = True
    cutoff: int = Field(default=3, ge=1, le=1000)
    renotify: Duration = Field(default=0.0, ge=0)
    recovery: bool = True
    escalate_after: Duration | None = Field(default=None, gt=0)
    escalate_after_notices: int | None = Field(default=None, ge=1)
    escalation: list[str] = Field(default_factory=list)
    channels: dict[str, ChannelConfig] = Field(default_factory=lambda: _default_channels())
    routes: list[Route] = Field(default_factory=list)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    templates: str | None = None


def _default_channels() -> dict[str, ChannelConfig]:
    return {"log": LogChannel()}


class AcknowledgementsConfig(StrictModel):
    """The SMTP server that takes acknowledgements by reply (off unless ``listen`` is set).

    Replies go to ``address`` with the incident's token added (``ack+TOKEN@domain``);
    only senders matching ``authorized`` (an address, or ``@domain`` for a whole
    domain) may acknowledge. ``reply_channel`` names the e-mail channel that sends
    confirmations (default: the first e-mail channel).
    """

    listen: str | None = None
    address: str = ""
    authorized: list[str] = Field(default_factory=list)
    max_size: int = Field(default=1_048_576, ge=1024, le=100_000_000)
    confirm: bool = True
    reply_channel: str | None = None

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str | None) -> str | None:
        return None if value is None else check_host_port(value)

    @model_validator(mode="after")
    def _complete(self) -> AcknowledgementsConfig:
        if self.listen is None:
            return self
        if not _looks_like_address(self.address):
            raise ValueError("address must be an e-mail address (ack@example.org) with listen")
        if not self.authorized:
            raise ValueError("authorized must list who may acknowledge (addresses or @domain)")
        return self


class Config(StrictModel):
    """A whole, validated config, as ``load.py`` builds it from a file; never mutated.

    Its services hold their effective values (every inherited key merged in); code
    that builds one directly (the benchmarks) must give them so.
    """

    instance: InstanceConfig = Field(default_factory=InstanceConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    node: NodeConfig = Field(default_factory=NodeConfig)
    defaults: Defaults = Field(default_factory=Defaults)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    acknowledgements: AcknowledgementsConfig = Field(default_factory=AcknowledgementsConfig)
    maintenance: ConfigWindows = ()
    services: tuple[ServiceConfig, ...] = ()
    status_pages: tuple[StatusPage, ...] = Field(default=(), max_length=MAX_PAGES)
    reload: ReloadConfig = Field(default_factory=ReloadConfig)
    include: tuple[str, ...] = ()
    source: str = ""
    checksum: str = ""

    def service(self, name: str) -> ServiceConfig | None:
        """The service called ``name``, if any."""
        return next((s for s in self.services if s.name == name), None)

    def listening_on(self, listen: str | None) -> Config:
        """This config with the dashboard at ``listen`` instead of ``web.listen``
        (``pymon run --listen``); itself for None. Raises pydantic's ValidationError
        for an address that is not ``HOST:PORT``."""
        if listen is None:
            return self
        web = WebConfig.model_validate({**self.web.model_dump(), "listen": listen})
        return self.model_copy(update={"web": web})
