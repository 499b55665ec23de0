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

A channel that talks to its receiver from another process (the e-mail courier,
``notify/courier.py``) gets a :class:`Receipt`: the journal's file descriptor and
the line's key. That process appends the line itself, so it lands even when the
daemon was killed while the receiver was answering. It holds the descriptor, and
with it the lock, until its conversation is over: a node starting meanwhile waits
for the lock (:data:`LOCK_WAIT`) before it reads the journal, rather than find it
"held by a live node" or read it before the last line is in. The header names the
process that wrote it, so that a lock still held after that process died is
known to be its courier's, and waited for.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pymon.programs import process_alive
from pymon.store.base import Outcome

__all__ = ["LOCK_WAIT", "Journal", "Receipt", "Replay", "journal_path", "line"]

log = logging.getLogger("pymon.notify")

# A journal longer than this was not written by pymon (a line is ~100 bytes and the
# file is emptied whenever the store has caught up); refuse to read it all.
_MAX_BYTES = 16 * 1024 * 1024

LOCK_WAIT = 70.0
"""How long a starting node waits for a journal still locked by the courier of a
process that is gone (it ends its conversations within 60 s of being orphaned)."""

_LOCK_POLL = 0.05


def line(key: str, channel: str, at: float) -> bytes:
    """The journal line saying the delivery of notice ``key`` to ``channel`` was
    accepted at ``at``."""
    return json.dumps([key, channel, at]).encode() + b"\n"


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where a channel working from another process notes that the receiver took
    the notice: append :func:`line` for ``key`` and ``channel`` to file ``fd``."""

    fd: int
    key: str
    channel: str


def journal_path(storage_url: str, owner: str) -> Path | None:
    """Where the outbox of ``owner`` keeps its journal for the database at
    ``storage_url``: beside a SQLite file, else None (no journal)."""
    # Imported here: the courier process reads journals' lines, never their places.
    from sqlalchemy.engine import make_url

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
        # The process writing it, and since when: a lock outliving it is its courier's.
        header = ["node", owner, os.getpid(), time.time()]
        self._header = (json.dumps(header) + "\n").encode()
        # Deliveries that may have a line in the file and are not yet settled
        # (recorded in the store, or never accepted): the file is emptied at zero.
        self._open = 0

    @property
    def fd(self) -> int:
        """The journal's open descriptor (opened and locked on first use)."""
        with self._lock:
            self._open_own()
            assert self._fd is not None
            return self._fd

    def take_over(self, wait: float = 0.0) -> Replay:
        """Open this node's journal (locked) and read every journal beside it; lock
        and claim the files of nodes that are gone. A file whose writer is gone but
        whose lock is held (its courier is finishing a conversation) is waited for,
        up to ``wait`` seconds in all. Unreadable lines are skipped. Blocks: call it
        off the event loop."""
        deadline = time.monotonic() + wait
        with self._lock:
            self._open_own(deadline)
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
            taken = _take_lock(fd, deadline if _writer_gone(other) else 0.0, other)
            # Read once locked, when the lock is had: its courier's last line is in.
            owner, lines = _read(other)
            outcomes.extend(lines)  # recording a delivery twice is harmless
            if not taken:
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

    def reserve(self) -> None:
        """A delivery is about to be attempted: its line may come (from this process
        or its courier), so the file is not emptied until it is :meth:`settled`."""
        with self._lock:
            self._open += 1

    def note(self, outcome: Outcome) -> None:
        """Append ``outcome`` (a reserved delivery accepted at ``outcome.at``); a failure
        is logged, never raised (the store's mark still follows)."""
        with self._lock:
            try:
                self._open_own()
                assert self._fd is not None
                os.write(self._fd, line(outcome.key, outcome.channel, outcome.at))
            except OSError as exc:
                log.error("outbox: cannot write %s: %s", self.path, exc)

    def settled(self, count: int = 1) -> None:
        """``count`` reserved deliveries are settled (recorded in the store, or never
        accepted); empty the file once all are."""
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

    def _open_own(self, deadline: float = 0.0) -> None:
        """Open and lock this node's file (the caller holds ``_lock``); a lock held by
        another process is waited for until ``deadline`` (monotonic)."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if not _take_lock(fd, deadline, self.path):
            log.error(
                "outbox: %s is locked: is another process running as node %s?",
                self.path,
                self.owner,
            )
        # An earlier life's header stays until the file is first emptied (at start,
        # once its lines are in the store): then it names this process.
        if os.fstat(fd).st_size == 0:
            os.write(fd, self._header)
        self._fd = fd

    def _empty(self) -> None:
        """Cut the file back to its header line (the lock is held by the caller)."""
        if self._fd is None:
            return
        try:
            # Nothing is reserved, so no courier appends meanwhile (O_APPEND: the
            # header goes to the start of the emptied file).
            os.ftruncate(self._fd, 0)
            os.write(self._fd, self._header)
        except OSError as exc:
            log.error("outbox: cannot empty %s: %s", self.path, exc)


def _take_lock(fd: int, deadline: float, path: Path) -> bool:
    """Take the exclusive lock of ``fd``, waiting for it until ``deadline``
    (monotonic; the past: no wait); whether it was taken."""
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
        if not told:
            log.warning(
                "outbox: waiting for the deliveries still in flight from a stopped "
                "process to end (%s is locked)",
                path,
            )
            told = True
        time.sleep(_LOCK_POLL)


def _writer_gone(path: Path) -> bool:
    """Whether the process named in the header of journal ``path`` has ended (a
    header without one, from an older pymon, cannot tell: not gone)."""
    try:
        with path.open("rb") as f:
            header = json.loads(f.readline())
        _, _, pid, since = header
        return not process_alive(int(pid), float(since))
    except (OSError, ValueError, TypeError):
        return False


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
    for text in data.splitlines():
        try:
            item = json.loads(text)
            if item[0] == "node" and len(item) in (2, 4):
                owner = str(item[1])
                continue
            key, channel, at = item
            outcomes.append(Outcome(str(key), str(channel), float(at)))
        except (ValueError, TypeError, IndexError, KeyError):
            log.warning("outbox: skipped an unreadable line of %s", path)
    return owner, outcomes
