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

Each node keeps its own journal (``<database>-sent-<node>``), its first line
naming the node, and holds an exclusive ``flock`` on it while it runs. A node's
default name holds its process id, so a restarted pymon is a new node: at start
it reads every journal beside the database, and one whose lock it can take
belonged to a process that is gone (the kernel drops the locks of a killed
process): it records those lines too, gives that node's delivery claims back at
once, and deletes the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from pymon.store.base import Outcome

__all__ = ["Journal", "Replay", "journal_path"]

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


@dataclass(frozen=True, slots=True)
class Replay:
    """What the journals beside the database hold at start: the deliveries noted
    (by this node's earlier life or by nodes that are gone), the names of the nodes
    that are gone, and their files (locked by this process until :meth:`Journal.done`)."""

    outcomes: list[Outcome]
    gone: list[str]
    files: list[tuple[Path, int]]


class Journal:
    """Accepted deliveries not yet known to be in the store; safe to note from any thread."""

    def __init__(self, path: Path, owner: str) -> None:
        self.path = path
        self.owner = owner
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._header = (json.dumps(["node", owner]) + "\n").encode()
        # Lines noted and not yet reported recorded: the file is emptied at zero.
        self._open = 0

    def take_over(self) -> Replay:
        """Open this node's journal (locked) and read every journal beside it; lock
        and claim the files of nodes that are gone. Unreadable lines are skipped."""
        self._open_own()
        outcomes = _read(self.path)[1]
        gone: list[str] = []
        files: list[tuple[Path, int]] = []
        for other in sorted(self.path.parent.glob(f"{_stem(self.path)}-sent-*")):
            if other == self.path:
                continue
            try:
                fd = os.open(other, os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                continue
            owner, lines = _read(other)
            outcomes.extend(lines)  # recording a delivery twice is harmless
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # its node runs: it empties its own file
                continue
            files.append((other, fd))
            if owner is not None:
                gone.append(owner)
        return Replay(outcomes, gone, files)

    def done(self, replay: Replay) -> None:
        """What ``replay`` held is in the store: empty this journal, delete the files
        of the nodes that are gone."""
        self.clear()
        for path, fd in replay.files:
            with contextlib.suppress(OSError):
                path.unlink()
            os.close(fd)

    def note(self, outcome: Outcome) -> None:
        """Append ``outcome`` (a delivery accepted at ``outcome.at``); a failure is logged,
        never raised (the store's mark still follows)."""
        line = json.dumps([outcome.key, outcome.channel, outcome.at]).encode() + b"\n"
        with self._lock:
            try:
                self._open_own()
                assert self._fd is not None
                os.write(self._fd, line)
            except OSError as exc:
                log.error("outbox: cannot write %s: %s", self.path, exc)
                return
            self._open += 1

    def recorded(self, count: int = 1) -> None:
        """``count`` noted deliveries are now in the store; empty the file once all are."""
        with self._lock:
            self._open = max(0, self._open - count)
            if self._open == 0:
                self._empty()

    def clear(self) -> None:
        """Empty the file (what it held was copied into the store)."""
        with self._lock:
            self._open = 0
            self._empty()

    def close(self) -> None:
        """Close the file (it stays, emptied or not) and give its lock up."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _open_own(self) -> None:
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            log.error(
                "outbox: %s is locked: is another process running as node %s?",
                self.path,
                self.owner,
            )
        if os.fstat(fd).st_size == 0:
            os.write(fd, self._header)
        self._fd = fd

    def _empty(self) -> None:
        """Cut the file back to its header line (the lock is held by the caller)."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, len(self._header))
        except OSError as exc:
            log.error("outbox: cannot empty %s: %s", self.path, exc)


def _stem(path: Path) -> str:
    """The database file's name a journal path was made from."""
    return path.name.rsplit("-sent-", 1)[0]


def _read(path: Path) -> tuple[str | None, list[Outcome]]:
    """The node a journal belongs to (None if its header is missing) and its lines."""
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_BYTES + 1)
    except OSError:
        return None, []
    if len(data) > _MAX_BYTES:
        log.error("outbox: %s is over %d bytes, not read", path, _MAX_BYTES)
        return None, []
    owner: str | None = None
    outcomes: list[Outcome] = []
    for line in data.splitlines():
        try:
            item = json.loads(line)
            if item[0] == "node" and len(item) == 2:
                owner = str(item[1])
                continue
            key, channel, at = item
            outcomes.append(Outcome(str(key), str(channel), float(at)))
        except (ValueError, TypeError, IndexError, KeyError):
            log.warning("outbox: skipped an unreadable line of %s", path)
    return owner, outcomes
