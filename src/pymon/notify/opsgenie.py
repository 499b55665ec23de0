"""The ``opsgenie`` channel: Opsgenie's Alert API, one alert per incident.

Requests carry ``Authorization: GenieKey <api_key>``; the alert's ``alias`` is
``pymon:<instance>:<incident>`` (:func:`~pymon.notify.alerts.alert_key`):

- a problem or an escalation notice: ``POST /v2/alerts`` (message = the e-mail's
  subject cut to Opsgenie's 130 characters, description = the e-mail's text body,
  priority from the ``priority`` map, the service's tags, the notice's facts as
  details). Opsgenie adds a create for an open alias to that alert (its count goes
  up), so a renotify, an escalation or a retry never opens a second;
- an acknowledgement in pymon: ``POST /v2/alerts/<alias>/acknowledge?identifierType=alias``;
- an acknowledgement taken back or run out: ``.../unacknowledge?identifierType=alias``;
- a recovery: ``.../close?identifierType=alias``;
- flapping notices and notices without an incident: nothing (delivered at once).

Opsgenie answers 202 and processes the request later; its 429 and 5xx are retried by
the outbox (honouring ``Retry-After``), other 4xx (a bad key: 401/403) are permanent.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Final
from urllib.parse import quote

from pymon.config.schema import OpsgenieChannel
from pymon.model import Notice, Status
from pymon.notify.alerts import Step, alert_details, alert_key, level, step_of
from pymon.notify.base import NoticeContext
from pymon.notify.email import subject
from pymon.notify.endpoint import Endpoint
from pymon.notify.payload import encode_payload
from pymon.notify.templates import Templates

__all__ = ["DEFAULT_PRIORITY", "OpsgenieSender"]

log = logging.getLogger("pymon.notify")

#: The priority of each problem status unless the channel's ``priority`` says otherwise.
DEFAULT_PRIORITY: Final = {
    Status.FAILED: "P1",
    Status.ERROR: "P2",
    Status.WARN: "P3",
    Status.UNKNOWN: "P3",
}
# Opsgenie's own limits (longer values are cut by it, or refused).
_MESSAGE_MAX = 130
_DESCRIPTION_MAX = 15000
_NOTE_MAX = 25000
_TAGS_MAX = 20
_TAG_MAX = 50
_ACTIONS: Final = {
    Step.ACKNOWLEDGE: "acknowledge",
    Step.UNACKNOWLEDGE: "unacknowledge",
    Step.CLOSE: "close",
}


class OpsgenieSender:
    """Sends one channel's alerts to Opsgenie; holds one HTTP session between sends."""

    def __init__(self, name: str, config: OpsgenieChannel, templates: Templates) -> None:
        self.name = name
        self.config = config
        self.templates = templates
        self._base = config.api_url.rstrip("/")
        self._endpoint = Endpoint(
            "opsgenie", f"{self._base}/v2/alerts", config.timeout, verify_tls=config.verify_tls
        )

    def request(self, notice: Notice, ctx: NoticeContext) -> tuple[str, dict[str, Any]] | None:
        """The URL and JSON body ``notice`` becomes; None when it has nothing to say.

        Renders the e-mail's text template for a create (no I/O beyond reading it).
        """
        step = step_of(notice)
        if step is Step.NONE:
            return None
        alias = alert_key(notice, ctx)
        if step is Step.OPEN:
            text = self.templates.render("email", "txt", notice=notice, ctx=ctx)
            body = {
                "message": subject(notice, ctx)[:_MESSAGE_MAX],
                "alias": alias,
                "description": text[:_DESCRIPTION_MAX],
                "priority": level(notice.status, self.config.priority, DEFAULT_PRIORITY, "P3"),
                "tags": [tag[:_TAG_MAX] for tag in ctx.tags[:_TAGS_MAX]],
                "entity": notice.service,
                "source": f"pymon {ctx.instance}",
                # Opsgenie's details are strings only.
                "details": {
                    k: v if isinstance(v, str) else json.dumps(v, sort_keys=True)
                    for k, v in alert_details(notice, ctx, self.name).items()
                },
            }
            return self._endpoint.url, body
        action = _ACTIONS[step]
        url = f"{self._base}/v2/alerts/{quote(alias, safe=':')}/{action}?identifierType=alias"
        return url, {"source": f"pymon {ctx.instance}", "note": notice.message[:_NOTE_MAX]}

    async def send(self, notice: Notice, ctx: NoticeContext) -> None:
        """Send ``notice``'s request; return on 2xx, raise :class:`DeliveryError` otherwise."""
        # Rendering may read template files: off the loop, as the e-mail channel does.
        request = await asyncio.to_thread(self.request, notice, ctx)
        if request is None:
            log.debug("opsgenie %s: nothing to send for %s", self.name, notice.key)
            return
        url, body = request
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"GenieKey {self.config.api_key}",
        }
        await self._endpoint.post(encode_payload(body), headers, url=url)
        log.debug("opsgenie %s took %s", self.name, notice.key)

    async def close(self) -> None:
        """Close the HTTP session and its connections."""
        await self._endpoint.close()
