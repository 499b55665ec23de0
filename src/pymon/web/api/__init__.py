"""The JSON API (``/api/v1``) and ``/healthz``, over the engine's port.

Reads need ``require_read`` (open unless ``web.auth.read``), writes ``require_write``;
the heartbeat and ``/healthz`` are never behind auth. Routes that take a service
name use the ``path`` converter, so names with ``/`` work; the routes with a suffix
(``/history``, ``/ack``, ``/run``) come before the plain one. Every list is
paginated (``limit``, ``offset``) and says its ``total`` (null where the store
cannot count cheaply; then ``next_offset`` says whether more follow). A command the
engine refuses answers 409, one naming no service 404 (``web/app.py`` maps them).

The routes live by resource, and :data:`router` takes them in this order (the
OpenAPI document lists them so):

* ``uptime``: a service's uptime over a window (before ``services``, whose plain
  ``/api/v1/services/{name}`` would take its path);
* ``services``: the services, one service, its history, the events, and the
  commands on a service (acknowledge, run now);
* ``maintenance``: the maintenance windows, adding and removing one;
* ``notifications``: the notices' deliveries;
* ``nodes``: the cluster's nodes;
* ``reports``: the uptime (SLA) report, as JSON or CSV;
* ``system``: a job's heartbeat push, reload, the running config, ``/healthz``.

``common`` holds what they share (the read dependency, field errors, pagination),
``formats`` how the list of services is answered (JSON or NDJSON, ``fields=``); the
JSON shapes are in :mod:`pymon.web.views`.
"""

from __future__ import annotations

from fastapi import APIRouter

from pymon.web.api import maintenance, nodes, notifications, reports, services, system, uptime

__all__ = ["router"]

router = APIRouter()
for _module in (uptime, services, maintenance, notifications, nodes, reports, system):
    router.include_router(_module.router)
