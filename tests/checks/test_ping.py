"""The ping check: real ICMP to 127.0.0.1, with and without the privilege it needs."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from pymon.model import Status
from tests.checks.targets import FakeResolver, RunCheck
from tests.conftest import need

_NOBODY = 65534


def _icmp_datagram_allowed(groups: set[int]) -> bool:
    """Whether net.ipv4.ping_group_range lets one of ``groups`` open ICMP datagram sockets."""
    low, high = map(int, Path("/proc/sys/net/ipv4/ping_group_range").read_text().split())
    return any(low <= group <= high for group in groups)


@contextlib.contextmanager
def _unprivileged() -> Iterator[set[int]]:
    """Run the body without root (as nobody, if we are root); yields the groups in effect.

    Only the effective ids change, so root comes back afterwards; as root the kernel
    drops the effective capabilities (CAP_NET_RAW with them) while euid is not 0.
    """
    if os.geteuid() != 0:
        yield {os.getegid(), *os.getgroups()}
        return
    groups = os.getgroups()
    os.setgroups([])
    os.setegid(_NOBODY)
    os.seteuid(_NOBODY)
    try:
        yield {_NOBODY}
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)


def _can_ping() -> bool:
    kind = socket.SOCK_RAW if os.geteuid() == 0 else socket.SOCK_DGRAM
    try:
        socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP).close()
    except PermissionError:
        return False
    return True


async def test_loopback_answers(check: RunCheck) -> None:
    need(_can_ping(), "ICMP sockets are not permitted here (not root, ping_group_range)")
    result = await check("ping", {"host": "127.0.0.1", "count": 3, "packet_interval": "50ms"})
    assert result.status is Status.OK, result.message
    assert result.message.startswith("3/3 replies from 127.0.0.1, 0% loss, rtt avg ")
    assert result.metrics["loss_pct"] == 0
    assert 0 <= result.metrics["rtt_avg_ms"] <= result.metrics["rtt_max_ms"]


async def test_name_is_resolved_through_the_resolver(check: RunCheck) -> None:
    need(_can_ping(), "ICMP sockets are not permitted here (not root, ping_group_range)")
    resolver = FakeResolver({"gateway.test": ["127.0.0.1"]})
    spec = {"host": "gateway.test", "count": 1}
    result = await check("ping", spec, resolver=resolver)
    assert result.status is Status.OK, result.message
    assert result.message.startswith("1/1 replies from gateway.test (127.0.0.1)")


async def test_without_privilege_is_unknown_or_uses_datagram_sockets(check: RunCheck) -> None:
    with _unprivileged() as groups:
        result = await check("ping", {"host": "127.0.0.1", "count": 1})
    if _icmp_datagram_allowed(groups):
        assert result.status is Status.OK, result.message
    else:
        assert result.status is Status.UNKNOWN
        assert result.message.startswith(
            "cannot run ping check: ICMP needs root (or CAP_NET_RAW), "
            "or net.ipv4.ping_group_range to include group"
        )
        assert not result.metrics


async def test_name_that_fake_resolver_does_not_know_fails(check: RunCheck) -> None:
    result = await check("ping", {"host": "gateway.test"}, resolver=FakeResolver())
    assert result.status is Status.FAILED
    assert result.message == "cannot resolve gateway.test: fake resolver: gateway.test is not known"


async def test_invalid_name_fails_with_system_resolver(check: RunCheck) -> None:
    result = await check("ping", {"host": "nowhere.invalid"}, within=2.0)
    assert result.status is Status.FAILED
    assert result.message.startswith("cannot resolve nowhere.invalid: ")


def test_no_reply_is_failed_with_full_loss(tmp_path: Path) -> None:
    """In a network namespace of the test's own, loopback ignores echo requests."""
    import shutil
    import subprocess
    import sys

    need(os.geteuid() == 0 and shutil.which("ip") is not None, "needs root and iproute2 (ip netns)")
    ns = f"pymon-ping-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        inside = ["ip", "netns", "exec", ns]
        subprocess.run([*inside, "ip", "link", "set", "lo", "up"], check=True)
        subprocess.run([*inside, "sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1"], check=True)
        out = subprocess.run(
            [
                *inside,
                sys.executable,
                "-m",
                "pymon",
                "check",
                "ping",
                "--host",
                "127.0.0.1",
                "--count",
                "3",
                "--packet-interval",
                "50ms",
                "--timeout",
                "2s",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert out.returncode == 2, out.stderr
    assert out.stdout.startswith("FAILED - no reply from 127.0.0.1 (3 sent)"), out.stdout
    assert "loss_pct=100" in out.stdout


def _raw_icmp_sockets_here() -> int:
    """Raw ICMP sockets this process holds (/proc/net/raw, matched by inode)."""
    mine = set()
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                mine.add(target[len("socket:[") : -1])
    lines = Path("/proc/net/raw").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[9] in mine)


async def test_concurrent_pings_share_one_raw_socket_and_each_gets_its_own_reply(
    check: RunCheck,
) -> None:
    # Every raw ICMP socket gets every reply: one per check collapsed the process
    # once hundreds were in flight. As root the checks share one.
    need(os.geteuid() == 0, "raw ICMP sockets need root")
    spec = {"host": "127.0.0.1", "count": 2, "packet_interval": "10ms"}
    gc.collect()  # the sockets of earlier tests' loops, closed with them
    before = _raw_icmp_sockets_here()
    results = await asyncio.gather(*(check("ping", spec) for _ in range(200)))
    assert all(r.status is Status.OK for r in results), {r.message for r in results}
    assert {r.message.split(",")[0] for r in results} == {"2/2 replies from 127.0.0.1"}
    assert _raw_icmp_sockets_here() - before == 1
