"""The engine: scheduling, the rules that turn results into states, and the daemon."""

from __future__ import annotations
