"""The exception tree of pymon.

::

    PymonError                  anything pymon raises on purpose
    ├── ConfigError             a config file that cannot be used; carries every ConfigIssue
    ├── CheckSetupError         a check that cannot run at all here (e.g. no ICMP permission)
    ├── StoreError              the store cannot be opened, read or written
    │   └── Fenced              a write for shards this node no longer holds was refused
    ├── DeliveryError           a channel could not deliver a notice; ``permanent``: do
    │                           not retry (defined in ``notify/base.py``, beside the channels)
    ├── UnknownService          a command or query named no configured service
    └── CommandRefused          a command the engine cannot carry out now (and why)

A check never raises for a bad *target*: a refused connection, a timeout or a
garbage answer is a CheckResult with status ``failed`` or ``error``. Outside the
tree on purpose: ``client.ClientError`` (the API client's, raised in the command
line's process, not the daemon's) and exceptions that never leave the package
raising them (``checks.base.Unreachable``, the shell's ``UsageError`` and
``CommandFailed``, a few private ones).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CheckSetupError",
    "CommandRefused",
    "ConfigError",
    "ConfigIssue",
    "Fenced",
    "PymonError",
    "StoreError",
    "UnknownService",
]


class PymonError(Exception):
    """Base of every error pymon raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One thing wrong in a config file, located by file, line and key path."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(PymonError):
    """A config that failed to load; ``issues`` lists every problem found, not just the first."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class CheckSetupError(PymonError):
    """A check that cannot run on this machine at all, whatever the target does."""


class StoreError(PymonError):
    """The store could not be opened, read or written."""


class Fenced(StoreError):
    """A write was refused: another node took ``shards`` (their epochs rose) since this
    node's lease, so what it wrote for them would overwrite the new owner's work."""

    def __init__(self, shards: frozenset[int]) -> None:
        super().__init__(f"no longer holds shards {sorted(shards)}: another node took them")
        self.shards = shards


class UnknownService(PymonError):
    """A command or query named a service the engine does not have."""


class CommandRefused(PymonError):
    """A command the engine cannot carry out now: nothing to acknowledge, a disabled
    service, a window that only the config can change. The message says which."""
