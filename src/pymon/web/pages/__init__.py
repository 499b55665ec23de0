"""The dashboard: server-rendered pages (Jinja2) that the ES modules in ``static/`` enhance.

Every page reads without JavaScript; the modules add live updates, client-side
sorting and in-place actions. Links, form actions and asset URLs carry
:func:`~pymon.web.proxy.public_prefix`, so the pages work under ``web.base_path``
and behind a proxy's prefix. Writes go through
:func:`~pymon.web.auth.require_write` (credentials and CSRF); each answers JSON to a
``fetch`` that asks for it and redirects a plain form post back to its page.

The modules:

* ``render``: the template environment and its filters, rendering with the security
  headers, the redirect to the login page, reading a form, columns and flags;
* ``read``: the pages that show (overview, services, a service, events, nodes, health),
  with ``chart`` drawing a service's chart and timeline and ``axis`` its value axis
  (title and ticks; ``static/axis.js`` is its twin);
* ``actions``: a service page's actions (acknowledge, take back, run, maintenance);
* ``maintenance``: the maintenance page, adding and removing a window;
* ``reports``: the uptime (SLA) report, sortable, with a date range and CSV;
* ``login``: signing in and out.
"""

from __future__ import annotations

from fastapi import APIRouter

from pymon.web.pages import actions, login, maintenance, read, reports
from pymon.web.pages.render import COLUMNS, FLAGS, PAGE_SIZE

__all__ = ["COLUMNS", "FLAGS", "PAGE_SIZE", "router"]

router = APIRouter(include_in_schema=False)
for _module in (read, reports, actions, maintenance, login):
    router.include_router(_module.router)
