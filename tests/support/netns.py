"""Network namespaces made by a test: places that reach the host over a network of
their own, for the location tests (issue 18).

:func:`network` makes ``count`` namespaces, each joined to the host by a veth pair.
The host side of every pair holds the same two addresses, so one config works from
every namespace:

- :attr:`Network.host` (``10.251.X.1``): where the namespaces reach the host's mail
  sink, and where the host's requests to a namespace come from;
- :attr:`Network.target` (``10.251.X.2``): where the services' target listens, the
  address a test cuts with :func:`cut` (an unreachable route inside one namespace) while
  the namespace still reaches :attr:`Network.host` and answers the host's requests.

Namespace ``k`` has ``10.251.X.(11+k)/24`` on its ``eth0``; the host routes that
address (``/32``) out of the pair's host side. ``X`` is picked from the pid and
skipped while taken, so two runs at once do not clash. The namespaces are named
``pymon-net-PID-K`` and deleted on exit, also when the test failed, after killing
whatever still runs inside them; ones left by a run that was killed (its pid gone)
are deleted before new ones are made.

Needs root and iproute2: :func:`need_netns` skips the test otherwise (fails under
``PYMON_REQUIRE_ALL=1``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tests.conftest import need

__all__ = [
    "Namespace",
    "Network",
    "cut",
    "exec_argv",
    "need_netns",
    "network",
    "remove_stale",
    "restore",
    "run_in",
]

#: Namespaces and host-side veth ends of this module, with the pid of the run that made them.
_NS_NAME = re.compile(r"^pymon-net-(\d+)-\d+$")
_LINK_NAME = re.compile(r"^pn(\d+)h\d+$")
#: The private /16 the networks are cut from (one /24 per run); nothing here uses it.
_RANGE = "10.251"
#: More namespaces than this is a mistake, not a test.
_MAX = 16


@dataclass(frozen=True, slots=True)
class Namespace:
    """One namespace: its name (for ``ip netns exec``), its own address, and the
    host's end of its veth pair."""

    name: str
    address: str
    link: str


@dataclass(frozen=True, slots=True)
class Network:
    """What :func:`network` made: the host's two shared addresses and the namespaces."""

    host: str
    target: str
    namespaces: tuple[Namespace, ...]


def need_netns() -> None:
    """Skip the calling test (fail under PYMON_REQUIRE_ALL) unless it may make namespaces."""
    need(os.geteuid() == 0 and shutil.which("ip") is not None, "needs root and iproute2 (ip netns)")


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def run_in(ns: Namespace | str, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to completion inside ``ns`` (``ip netns exec``), output captured."""
    name = ns.name if isinstance(ns, Namespace) else ns
    return subprocess.run(
        ["ip", "netns", "exec", name, *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def exec_argv(ns: Namespace, argv: Sequence[str]) -> list[str]:
    """``argv`` as run inside ``ns``: ``ip netns exec`` execs it, so a process started
    with this argv has the command's own pid (a signal to it reaches the command)."""
    return ["ip", "netns", "exec", ns.name, *argv]


def cut(ns: Namespace, address: str) -> None:
    """Cut ``ns``'s route to ``address``: an ``unreachable`` route, more specific than
    the namespace's /24, so connecting fails at once inside ``ns`` with "no route to
    host" (a ``blackhole`` route would fail it too, but with a puzzling "invalid
    argument"), while the rest of the namespace's network is untouched."""
    _ip("-n", ns.name, "route", "add", "unreachable", f"{address}/32")


def restore(ns: Namespace, address: str) -> None:
    """Undo :func:`cut`."""
    _ip("-n", ns.name, "route", "del", "unreachable", f"{address}/32")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_inside(name: str) -> None:
    """SIGKILL every process still in namespace ``name`` (ours: the test started them)."""
    for line in _ip("netns", "pids", name, check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(line), signal.SIGKILL)


def _delete(name: str, link: str | None = None) -> None:
    _kill_inside(name)
    if link is not None:
        # Deleting the host's end takes the pair, its addresses and routes with it at
        # once; the namespace's own teardown would do it too, but later, in the
        # kernel's own time, so a next run could still see the addresses.
        _ip("link", "del", link, check=False)
    _ip("netns", "del", name, check=False)


def remove_stale() -> list[str]:
    """Delete the namespaces (and host-side veth ends) of runs whose pid is gone;
    their names."""
    removed: list[str] = []
    for line in _ip("netns", "list").splitlines():
        name = line.split(" ", 1)[0]
        found = _NS_NAME.match(name)
        if found and not _alive(int(found.group(1))):
            _delete(name)
            removed.append(name)
    for line in _ip("-o", "link", "show").splitlines():
        # "7: pn123h0@if2: <...>": the name up to "@" (a veth shows its peer after it).
        name = line.split(": ", 2)[1].split("@", 1)[0]
        found = _LINK_NAME.match(name)
        if found and not _alive(int(found.group(1))):
            _ip("link", "del", name, check=False)
            removed.append(name)
    return removed


def _free_subnet(pid: int) -> str:
    """``10.251.X`` with no address of this host in it, X from the pid onwards."""
    taken = _ip("-4", "-o", "addr", "show")
    for step in range(250):
        prefix = f"{_RANGE}.{(pid + step) % 250 + 1}"
        if f" {prefix}." not in taken:
            return prefix
    raise RuntimeError(f"no free /24 left in {_RANGE}.0.0/16")


@contextlib.contextmanager
def network(count: int) -> Iterator[Network]:
    """``count`` namespaces joined to the host (see the module's docstring), removed
    on exit with whatever runs in them."""
    if not 1 <= count <= _MAX:
        raise ValueError(f"count must be 1 to {_MAX}, not {count}")
    remove_stale()
    pid = os.getpid()
    prefix = _free_subnet(pid)
    host, target = f"{prefix}.1", f"{prefix}.2"
    made: list[Namespace] = []
    try:
        for k in range(count):
            ns = Namespace(f"pymon-net-{pid}-{k}", f"{prefix}.{11 + k}", f"pn{pid}h{k}")
            outer = ns.link
            _ip("netns", "add", ns.name)
            made.append(ns)
            _ip("link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", ns.name)
            # The host's end: both shared addresses (the first one is the source of the
            # host's packets to the namespace), and the route to the namespace.
            for address in (host, target):
                _ip("addr", "add", f"{address}/32", "dev", outer)
            _ip("link", "set", outer, "up")
            _ip("route", "add", f"{ns.address}/32", "dev", outer, "src", host)
            _ip("-n", ns.name, "link", "set", "lo", "up")
            _ip("-n", ns.name, "addr", "add", f"{ns.address}/24", "dev", "eth0")
            _ip("-n", ns.name, "link", "set", "eth0", "up")
        yield Network(host, target, tuple(made))
    finally:
        for ns in made:
            _delete(ns.name, ns.link)
