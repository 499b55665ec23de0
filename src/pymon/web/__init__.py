"""The web side: the JSON API now, the dashboard later (``app.py`` builds the app)."""

from __future__ import annotations
