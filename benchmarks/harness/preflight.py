"""What a point needs from the machine, and a reason when the machine lacks it.

A bench that cannot run for want of a privilege or a program says why and is
skipped (:class:`Unavailable`), rather than reporting a run of failed checks.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from collections.abc import Sequence
from pathlib import Path

__all__ = ["PING_GROUP_RANGE", "Unavailable", "find_program", "icmp_unavailable"]

PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")


class Unavailable(RuntimeError):
    """The point (or a peer) cannot run on this machine; the message says why."""


def icmp_unavailable() -> str | None:
    """Why this process cannot send ICMP echo requests, or None when it can.

    The ping check opens a raw socket when it may (root, or CAP_NET_RAW), else an
    ICMP datagram socket, which needs the process's group in net.ipv4.ping_group_range.
    """
    for kind in (socket.SOCK_RAW, socket.SOCK_DGRAM):
        try:
            socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP).close()
        except PermissionError:
            continue
        return None
    groups = "unreadable"
    with contextlib.suppress(OSError):
        groups = " ".join(PING_GROUP_RANGE.read_text().split())
    return (
        "ICMP needs root (or CAP_NET_RAW), or net.ipv4.ping_group_range "
        f"(now {groups}) to include group {os.getegid()}: "
        f"sysctl -w net.ipv4.ping_group_range='0 {os.getegid()}'"
    )


def find_program(names: Sequence[str], dirs: Sequence[str] = ()) -> str | None:
    """The path of the first of ``names`` found on PATH or in ``dirs``, or None."""
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), *dirs])
    for name in names:
        if found := shutil.which(name, path=search):
            return found
    return None
