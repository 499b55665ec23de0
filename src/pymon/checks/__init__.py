"""The checks: one module per protocol (``ping``, ``tcp``, ``http``...) and the registry
that names them (:mod:`pymon.checks.registry`, an explicit table).

What the rest of pymon uses is here: :func:`check_type` finds a type by name,
:func:`run_check` runs one check under its timeout, :class:`CheckContext` is what a
check receives. The protocol modules themselves import nothing from this package
but ``base`` and their shared helpers (``_dialogue``, ``tls``).
"""

from __future__ import annotations

from pymon.checks.base import CheckContext
from pymon.checks.registry import REGISTRY, CheckFn, CheckType, check_type, run_check

__all__ = ["REGISTRY", "CheckContext", "CheckFn", "CheckType", "check_type", "run_check"]
