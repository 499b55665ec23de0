"""Persistence: the Store protocol (``base.py``), its SQL implementation (the ``sql``
package: SQLite and PostgreSQL) and the batch writer in front of it (``writer.py``)."""

from __future__ import annotations
