"""Config: YAML in, a validated immutable Config out (see ``load.py``)."""

from __future__ import annotations
