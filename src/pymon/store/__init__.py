"""Persistence: the Store protocol (``base.py``) and its SQL implementation (``sql.py``)."""

from __future__ import annotations
