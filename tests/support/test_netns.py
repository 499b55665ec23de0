"""The test-made network namespaces clean up after themselves, and after a killed run."""

from __future__ import annotations

import subprocess
import sys

from tests.support.netns import need_netns, network, run_in


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split(" ", 1)[0] for line in out.stdout.splitlines()}


def _links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True)
    return {line.split(": ", 2)[1].split("@", 1)[0] for line in out.stdout.splitlines()}


def test_namespaces_go_with_what_runs_in_them_and_stale_ones_are_removed() -> None:
    need_netns()
    # A run killed before its cleanup left a namespace and a veth end, named after
    # its pid, which is gone now.
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(gone.stdout)
    stale_ns, stale_link = f"pymon-net-{dead}-0", f"pn{dead}h0"
    subprocess.run(["ip", "netns", "add", stale_ns], check=True)
    subprocess.run(
        ["ip", "link", "add", stale_link, "type", "veth", "peer", "name", f"pn{dead}x0"], check=True
    )
    try:
        with network(2) as net:
            assert stale_ns not in _namespaces()
            assert stale_link not in _links()
            names = {ns.name for ns in net.namespaces}
            assert names <= _namespaces()
            # Something still running inside does not keep a namespace alive.
            sleeper = subprocess.Popen(
                ["ip", "netns", "exec", net.namespaces[0].name, "sleep", "600"]
            )
            reach = run_in(net.namespaces[1], ["ip", "-4", "route", "get", net.target])
            assert reach.returncode == 0 and "eth0" in reach.stdout, reach.stderr
        assert sleeper.wait(timeout=10) == -9
        assert not names & _namespaces()
        assert not {ns.link for ns in net.namespaces} & _links()
    finally:
        # Only if the test failed before remove_stale did.
        if stale_ns in _namespaces():
            subprocess.run(["ip", "netns", "del", stale_ns], check=False)
        if stale_link in _links():
            subprocess.run(["ip", "link", "del", stale_link], check=False)
