"""The web side: the JSON API, the live stream, Prometheus metrics and the dashboard.

:func:`pymon.web.app.create_app` builds one FastAPI app on the engine's port (the
only way to the engine, :mod:`pymon.web.engine`), and :mod:`pymon.web.server`
serves it inside the daemon's event loop. What lives where:

* ``api/``: the JSON API (``/api/v1``) and ``/healthz``, by resource;
* ``pages/``: the dashboard's server-rendered pages and their actions, with
  ``templates/`` and the ES modules in ``static/``;
* ``stream.py``: ``/api/v1/stream``, the live Server-Sent Events;
* ``metrics.py``: ``/metrics``, Prometheus text;
* ``views.py``: the engine's values as JSON, the same for all of the above;
* ``commands.py``: the commands the web takes (a maintenance window), one model
  whatever path they come by;
* ``auth.py`` and ``credentials.py``: who may read and write (tokens, users,
  sessions, CSRF, the loopback rule) and how secrets are checked;
* ``proxy.py``: forwarded headers from trusted proxies, the public prefix;
* ``downsample.py``: a history's points for a chart.
"""

from __future__ import annotations
