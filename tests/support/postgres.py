"""A throwaway PostgreSQL server for tests: initdb + pg_ctl on 127.0.0.1, a free port.

Plain Python, no pytest: a test package wraps it in a fixture (see
``tests/store/conftest.py``)::

    server = PostgresServer.start()        # raises PostgresUnavailable without binaries
    url = server.create_database("t1")  # postgresql://postgres@127.0.0.1:PORT/t1
    ...
    server.stop()

PostgreSQL refuses to run as root, and tests often do (containers, CI), so as root
the server runs as the ``postgres`` user (else ``nobody``) and its directory is
chowned to it. Authentication is ``trust`` and it listens on loopback only; fsync is
off because the data is thrown away, which makes it fast, not less real.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PostgresServer", "PostgresUnavailable", "find_pg_bin", "running_postgres"]

SUPERUSER = "postgres"
_START_TIMEOUT_S = 30


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server binaries are not installed here (the test should skip)."""


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl``, ``postgres`` and ``psql``, or None.

    ``PATH`` first (Debian symlinks only some tools there, so the symlink is
    followed to the real directory), then the newest ``/usr/lib/postgresql/*/bin``.
    """
    candidates: list[Path] = []
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    versions.sort(key=lambda p: _version_key(Path(p).parent.name), reverse=True)
    candidates.extend(Path(p) for p in versions)
    for directory in candidates:
        if all(
            os.access(directory / tool, os.X_OK)
            for tool in ("initdb", "pg_ctl", "postgres", "psql")
        ):
            return directory
    return None


def _version_key(name: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return (0,)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged account to run PostgreSQL as when we are root, else None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailable("running as root and neither 'postgres' nor 'nobody' exists")


@dataclass
class PostgresServer:
    """A running PostgreSQL cluster in a temporary directory; :meth:`stop` removes it."""

    bindir: Path
    basedir: Path
    port: int
    host: str = "127.0.0.1"
    user: str = SUPERUSER
    _account: pwd.struct_passwd | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)
    _version_num: int | None = field(default=None, repr=False)

    @property
    def datadir(self) -> Path:
        """The cluster's data directory."""
        return self.basedir / "data"

    @property
    def sockdir(self) -> Path:
        """The Unix-socket directory (kept private instead of /var/run/postgresql)."""
        return self.basedir / "sock"

    @property
    def logfile(self) -> Path:
        """The server log, worth reading when a start fails."""
        return self.basedir / "server.log"

    def url(self, database: str = "postgres") -> str:
        """The user-facing ``postgresql://`` URL of ``database`` (as pymon's config has it)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    @classmethod
    def start(cls, *, attempts: int = 3) -> PostgresServer:
        """initdb a new cluster and start it; return once it accepts connections.

        Raises :class:`PostgresUnavailable` when the binaries are missing and
        RuntimeError (with the server log) when it does not come up.
        """
        bindir = find_pg_bin()
        if bindir is None:
            raise PostgresUnavailable(
                "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
                "/usr/lib/postgresql/*/bin; install the 'postgresql' package"
            )
        account = _run_as()
        # Not under pytest's tmp_path: that directory is 0700 root, and the server
        # runs as another user who must be able to reach its data directory.
        basedir = Path(tempfile.mkdtemp(prefix="pymon-pg-"))
        server = cls(bindir=bindir, basedir=basedir, port=0, _account=account)
        try:
            server._initdb()
            last_error: Exception | None = None
            # Another process can take the free port between probing and binding it.
            for _ in range(attempts):
                server.port = _free_port()
                try:
                    server._pg_ctl_start()
                    server._wait_ready()
                except RuntimeError as exc:
                    last_error = exc
                    server._pg_ctl("stop", "-m", "immediate", check=False)
                    continue
                atexit.register(server.stop)
                return server
            raise RuntimeError(f"PostgreSQL did not start: {last_error}")
        except BaseException:
            server.stop()
            raise

    def _subprocess_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "cwd": self.basedir,  # the server user may not be allowed into our cwd
            "stdout": subprocess.PIPE,
            "stderr": subprocess.STDOUT,
            "text": True,
            "env": {**os.environ, "LC_ALL": "C", "TZ": "UTC"},
        }
        if self._account is not None:
            kwargs["env"]["HOME"] = str(self.basedir)
            kwargs.update(user=self._account.pw_uid, group=self._account.pw_gid, extra_groups=[])
        return kwargs

    def _initdb(self) -> None:
        self.sockdir.mkdir()
        if self._account is not None:
            for path in (self.basedir, self.sockdir):
                os.chown(path, self._account.pw_uid, self._account.pw_gid)
        proc = subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=False,
            timeout=120,
            **self._subprocess_kwargs(),
        )
        if proc.returncode != 0:
            raise RuntimeError(f"initdb failed ({proc.returncode}):\n{proc.stdout}")

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args],
            check=False,
            timeout=_START_TIMEOUT_S + 30,
            **self._subprocess_kwargs(),
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"pg_ctl {args[-1]} failed ({proc.returncode}):\n{proc.stdout}\n{self._log_tail()}"
            )
        return proc

    def _pg_ctl_start(self) -> None:
        options = (
            f"-k {self.sockdir} -c listen_addresses={self.host} -p {self.port} -F"
            # Loud failures in the log, quiet success; small shared memory is plenty.
            " -c log_min_messages=warning -c shared_buffers=16MB -c max_connections=200"
        )
        self._pg_ctl(
            "-l", str(self.logfile), "-o", options, "-w", "-t", str(_START_TIMEOUT_S), "start"
        )

    def _wait_ready(self) -> None:
        """pg_ctl -w waits for the postmaster; also prove the TCP port answers SQL."""
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            try:
                self.psql("SELECT 1")
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with psql over TCP as the superuser; return its unaligned output.

        Synchronous on purpose (no event loop involved), for session setup and for
        tests that look at the database behind pymon's back.
        """
        proc = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                database,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no server log)"

    def version_num(self) -> int:
        """The server's version as a number, e.g. 150004 for 15.4."""
        if self._version_num is None:
            self._version_num = int(self.psql("SHOW server_version_num"))
        return self._version_num

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a fresh unique name by default); return its URL."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        # PostgreSQL 15 made WAL_LOG the default strategy, which writes the whole
        # template into the WAL: several times slower than a file copy here.
        strategy = " STRATEGY = FILE_COPY" if self.version_num() >= 150000 else ""
        self.psql(f'CREATE DATABASE "{name}"{strategy}')
        return self.url(name)

    def halt(self) -> None:
        """Stop the server at once, keeping its data and port (see :meth:`resume`)."""
        self._pg_ctl("stop", "-m", "immediate", "-w")

    def resume(self) -> None:
        """Start the halted server again on the same port."""
        self._pg_ctl_start()
        self._wait_ready()

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting whoever is still connected to it."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server at once (its data is disposable) and delete its directory."""
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._pg_ctl("stop", "-m", "immediate", "-w", check=False)
        self._remove()

    def _remove(self) -> None:
        shutil.rmtree(self.basedir, ignore_errors=True)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A started :class:`PostgresServer`, stopped and removed on exit."""
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()
