"""What the status page and badge tests share: a config with a page, day buckets."""

from __future__ import annotations

from collections.abc import Mapping

from pymon.model import Status
from pymon.uptime import DAY, Bucket, bucket_start
from tests.support.port import SOME_TIME

__all__ = ["TODAY", "bucket", "page_config"]

TODAY = bucket_start(SOME_TIME, DAY)
"""The start of the fake clock's UTC day."""


def page_config(
    *,
    services: str = "",
    components: str = "",
    page: str = "",
    extra: str = "",
    web: str = 'web: {listen: "127.0.0.1:8080"}',
) -> str:
    """A config with services ``web-ok`` (tag web), ``api-1`` and ``api-2`` (tag api),
    ``private`` (on no page), plus ``services``; and the page ``public`` with a group
    ``Web`` of ``Website`` and ``API`` plus ``components``."""
    return f"""
{web}
services:
  - {{name: web-ok, type: tcp, host: 127.0.0.1, port: 80, tags: [web]}}
  - {{name: api-1, type: tcp, host: 127.0.0.1, port: 81, tags: [api]}}
  - {{name: api-2, type: tcp, host: 127.0.0.1, port: 82, tags: [api]}}
  - {{name: private, type: tcp, host: 127.0.0.1, port: 83}}
{services}
{extra}
status_pages:
  - slug: public
    title: Example status
{page}
    groups:
      - name: Web
        components:
          - {{name: Website, service: web-ok}}
          - {{name: API, tags: [api]}}
{components}
"""


def bucket(
    service: str,
    start: float,
    seconds: Mapping[str, float],
    *,
    width: int = DAY,
    maintenance: Mapping[str, float] | None = None,
    worst: Status | None = None,
    durations: Mapping[int, int] | None = None,
) -> Bucket:
    """A bucket of ``service`` from ``start`` with ``seconds`` per status (its worst
    the worst of them unless given), checks one a minute."""
    spent = [Status(s) for s, v in {**seconds, **(maintenance or {})}.items() if v > 0]
    checks = int(sum(seconds.values()) // 60) or 1
    return Bucket(
        service=service,
        start=start,
        width=width,
        checks=checks,
        ok_checks=int(seconds.get("ok", 0) // 60),
        seconds=dict(seconds),
        maintenance=dict(maintenance or {}),
        worst=worst if worst is not None else (Status.worst(*spent) if spent else None),
        duration_sum=0.0,
        bins=dict(durations or {}),
    )
