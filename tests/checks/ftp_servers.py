"""A real FTP server for the ftp check tests: pyftpdlib on 127.0.0.1, in a thread.

pyftpdlib is synchronous, so it runs in a thread with an I/O loop of its own; the
check under test (on the test's event loop) and CLI subprocesses talk to it as
to a remote server. Passive data ports are left to the kernel (port 0), which is
what a fixed ``passive_ports`` range would only make collide between servers.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyftpdlib.authorizers import DummyAuthorizer  # type: ignore[import-untyped]
from pyftpdlib.handlers import FTPHandler  # type: ignore[import-untyped]
from pyftpdlib.ioloop import IOLoop  # type: ignore[import-untyped]
from pyftpdlib.servers import FTPServer  # type: ignore[import-untyped]

__all__ = ["BANNER", "USER", "FtpServer", "ftp_home", "ftp_server"]

USER = ("alice", "s3cret-Pa55")
BANNER = "pymon test FTP server ready."


def ftp_home(root: Path) -> Path:
    """A home directory: ``pub`` with three files and an ``empty`` directory."""
    pub = root / "pub"
    pub.mkdir()
    for name in ("readme.txt", "data.bin", "notes.md"):
        (pub / name).write_text(f"{name}\n")
    (root / "empty").mkdir()
    return root


@dataclass
class FtpServer:
    """A running server: its port and the commands it received, in order (verbs only)."""

    port: int
    commands: list[str] = field(default_factory=list)


@contextlib.contextmanager
def ftp_server(home: Path) -> Iterator[FtpServer]:
    """Serve ``home`` to :data:`USER` and to anonymous on 127.0.0.1.

    Stops the server and every connection it holds on exit.
    """
    authorizer = DummyAuthorizer()
    authorizer.add_user(*USER, str(home), perm="elr")
    authorizer.add_anonymous(str(home))
    commands: list[str] = []

    def pre_process_command(handler: Any, line: str, cmd: str, arg: str) -> None:
        commands.append(cmd)
        FTPHandler.pre_process_command(handler, line, cmd, arg)

    handler = type(
        "Handler",
        (FTPHandler,),
        {
            "authorizer": authorizer,
            "banner": BANNER,
            # No 3 s pause after a failed login: the tests' timeouts are shorter.
            "auth_failed_timeout": 0,
            "pre_process_command": pre_process_command,
        },
    )
    server = FTPServer(("127.0.0.1", 0), handler, ioloop=IOLoop())
    stop = threading.Event()

    def stop_when_asked() -> None:
        # pyftpdlib's loop is not thread-safe: it is stopped from inside.
        if stop.is_set():
            server.close_all()

    server.ioloop.call_every(0.02, stop_when_asked)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"timeout": 0.02, "handle_exit": False},
        name="pyftpdlib",
        daemon=True,
    )
    thread.start()
    try:
        yield FtpServer(int(server.address[1]), commands)
    finally:
        stop.set()
        thread.join(timeout=5)
