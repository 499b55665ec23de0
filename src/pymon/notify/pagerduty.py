"""The ``pagerduty`` channel: PagerDuty's Events API v2, one alert per incident.

Every event carries the channel's ``routing_key`` and ``dedup_key``
``pymon:<instance>:<incident>`` (:func:`~pymon.notify.alerts.alert_key`):

- a problem or an escalation notice: ``trigger`` with a payload (summary = the
  e-mail's subject, severity from the ``severity`` map, the notice's facts in
  ``custom_details``, a link to the service's page). PagerDuty adds a trigger for an
  open alert to that alert, so a renotify, an escalation or a retry never opens a second;
- an acknowledgement in pymon: ``acknowledge``;
- an acknowledgement taken back or run out: ``trigger`` again (the Events API has
  no un-acknowledge; the alert's log shows it, and what it does to the alert's
  acknowledged state is PagerDuty's rule);
- a recovery: ``resolve``;
- flapping notices and notices without an incident: nothing (delivered at once).

PagerDuty answers 202; its 429 and 5xx are retried by the outbox (honouring
``Retry-After``), other 4xx (a bad routing key: 400) are permanent.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Final

from pymon.config.schema import PagerDutyChannel
from pymon.model import Notice, Status
from pymon.notify.alerts import Step, alert_details, alert_key, level, step_of
from pymon.notify.base import NoticeContext
from pymon.notify.email import subject
from pymon.notify.endpoint import Endpoint
from pymon.notify.payload import encode_payload

__all__ = ["DEFAULT_SEVERITY", "PagerDutySender"]

log = logging.getLogger("pymon.notify")

#: The severity of each problem status unless the channel's ``severity`` says otherwise.
DEFAULT_SEVERITY: Final = {
    Status.FAILED: "critical",
    Status.ERROR: "error",
    Status.WARN: "warning",
    Status.UNKNOWN: "warning",
}
# PagerDuty cuts a summary at 1,024 characters; pymon's subject is 200 at most anyway.
_SUMMARY_MAX = 1024
_ACTIONS: Final = {
    Step.OPEN: "trigger",
    Step.UNACKNOWLEDGE: "trigger",
    Step.ACKNOWLEDGE: "acknowledge",
    Step.CLOSE: "resolve",
}


class PagerDutySender:
    """Sends one channel's events to PagerDuty; holds one HTTP session between sends."""

    def __init__(self, name: str, config: PagerDutyChannel) -> None:
        self.name = name
        self.config = config
        self._endpoint = Endpoint(
            "pagerduty", config.api_url, config.timeout, verify_tls=config.verify_tls
        )

    def event(self, notice: Notice, ctx: NoticeContext) -> dict[str, Any] | None:
        """The Events API v2 document for ``notice``; None when it has nothing to say."""
        step = step_of(notice)
        if step is Step.NONE:
            return None
        action = _ACTIONS[step]
        event: dict[str, Any] = {
            "routing_key": self.config.routing_key,
            "event_action": action,
            "dedup_key": alert_key(notice, ctx),
        }
        if action == "trigger":
            event["payload"] = {
                "summary": subject(notice, ctx)[:_SUMMARY_MAX],
                "source": ctx.instance,
                "severity": level(notice.status, self.config.severity, DEFAULT_SEVERITY, "info"),
                "timestamp": datetime.fromtimestamp(notice.at, UTC).isoformat(),
                "component": notice.service,
                "group": ctx.service_type,
                "class": notice.kind.value,
                "custom_details": alert_details(notice, ctx, self.name),
            }
            event["client"] = "pymon"
            event["client_url"] = ctx.service_url
            event["links"] = [{"href": ctx.service_url, "text": f"{notice.service} in pymon"}]
        return event

    async def send(self, notice: Notice, ctx: NoticeContext) -> None:
        """Send ``notice``'s event; return on 2xx, raise :class:`DeliveryError` otherwise."""
        event = self.event(notice, ctx)
        if event is None:
            log.debug("pagerduty %s: nothing to send for %s", self.name, notice.key)
            return
        body = encode_payload(event)
        await self._endpoint.post(body, {"Content-Type": "application/json"})
        log.debug("pagerduty %s took %s (%s)", self.name, notice.key, event["event_action"])

    async def close(self) -> None:
        """Close the HTTP session and its connections."""
        await self._endpoint.close()
