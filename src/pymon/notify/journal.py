"""The outbox's journal of accepted deliveries: a file beside the SQLite database.

A delivery is marked done in the store once its channel took it, but a commit
waits for SQLite's one write lock (a batch of results may hold it for tens of
milliseconds) and a kill -9 inside that wait sends the notice again at the next
start. So the moment a receiver accepts (the SMTP server's ``250``), the outbox
first appends one line to this journal: a single ``write`` to a file opened
``O_APPEND``, microseconds and no lock shared with anything, and the kernel keeps
it through the death of the process. The store's mark follows as before. At the
next start the outbox copies what the journal holds into the store before it
sends anything, and empties it; it is emptied too whenever every line it holds
is in the store.

It is not synced to disk: it guards against the process dying, as SQLite's own
``synchronous=NORMAL`` does; a power cut can lose the last marks of both.
Another database than a SQLite file has no single writer lock to wait behind
and uses no journal.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from pathlib import Path

from sqlalchemy.engine import make_url

from pymon.store.base import Outcome

__all__ = ["Journal", "journal_path"]

log = logging.getLogger("pymon.notify")

# A journal longer than this was not written by pymon (a line is ~100 bytes and the
# file is emptied whenever the store has caught up); refuse to read it all.
_MAX_BYTES = 16 * 1024 * 1024


def journal_path(storage_url: str, owner: str) -> Path | None:
    """Where the outbox of ``owner`` keeps its journal for the database at
    ``storage_url``: beside a SQLite file, else None (no journal)."""
    url = make_url(storage_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", owner) or "pymon"
    return Path(f"{url.database}-sent-{safe}")


class Journal:
    """Accepted deliveries not yet known to be in the store; safe to note from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        # Lines noted and not yet reported recorded: the file is emptied at zero.
        self._open = 0

    def replay(self) -> list[Outcome]:
        """The deliveries an earlier life noted (all of them, whether or not it also
        recorded them: recording one twice is harmless). Unreadable lines (the
        process died mid-line) are skipped."""
        try:
            with self.path.open("rb") as f:
                data = f.read(_MAX_BYTES + 1)
        except FileNotFoundError:
            return []
        if len(data) > _MAX_BYTES:
            log.error("outbox: %s is over %d bytes, not read", self.path, _MAX_BYTES)
            return []
        outcomes: list[Outcome] = []
        for line in data.splitlines():
            try:
                key, channel, at = json.loads(line)
                outcomes.append(Outcome(str(key), str(channel), float(at)))
            except (ValueError, TypeError):
                log.warning("outbox: skipped an unreadable line of %s", self.path)
        return outcomes

    def note(self, outcome: Outcome) -> None:
        """Append ``outcome`` (a delivery accepted at ``outcome.at``); a failure is logged,
        never raised (the store's mark still follows)."""
        line = json.dumps([outcome.key, outcome.channel, outcome.at]).encode() + b"\n"
        with self._lock:
            try:
                if self._fd is None:
                    self._fd = os.open(
                        self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
                    )
                os.write(self._fd, line)
            except OSError as exc:
                log.error("outbox: cannot write %s: %s", self.path, exc)
                return
            self._open += 1

    def recorded(self, count: int = 1) -> None:
        """``count`` noted deliveries are now in the store; empty the file once all are."""
        with self._lock:
            self._open = max(0, self._open - count)
            if self._open == 0 and self._fd is not None:
                try:
                    os.ftruncate(self._fd, 0)
                except OSError as exc:
                    log.error("outbox: cannot empty %s: %s", self.path, exc)

    def clear(self) -> None:
        """Empty the file (what it held was copied into the store)."""
        with self._lock:
            self._open = 0
            try:
                os.truncate(self.path, 0)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.error("outbox: cannot empty %s: %s", self.path, exc)

    def close(self) -> None:
        """Close the file (it stays, emptied or not)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
