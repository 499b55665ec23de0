"""What pymon shows the public: status pages and badges (docs/status-pages.md).

Every route here is **public on purpose**: it lies under
:data:`~pymon.web.auth.PUBLIC_READS` (the auth middleware does not even read the
credentials of such a request) and none calls :func:`~pymon.web.auth.require_read`,
so they answer without credentials even when ``web.auth.read`` is on, and they show
only what a status page's config lets out (public names, states, uptime, incident
times and acknowledgement comments). The modules:

* ``vocabulary``: the public states and how pymon's statuses map to them;
* ``exposure``: which services a config makes public, under which names;
* ``board``: a status page's content, for the HTML and the JSON forms;
* ``status``: the status page routes; ``badges``: the badge routes, drawn by
  ``shields``;
* ``cache``: rendered answers kept for a few seconds.
"""

from __future__ import annotations

from fastapi import APIRouter

from pymon.web.public import badges, status

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
router.include_router(status.router)
router.include_router(badges.router)
