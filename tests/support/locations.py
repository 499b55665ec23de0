"""The locations scenario's parts (issue 18), for its test and its benchmark: three
locations, one node in a network namespace for each, one service checked from all."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import IO

from tests.support.mail import MailSink
from tests.support.netns import Namespace, Network, exec_argv
from tests.support.nodes import Node

__all__ = ["LOCATIONS", "node_in", "write_config"]

#: The locations, one namespace and one node each, in the order of the namespaces.
LOCATIONS = ("east", "west", "north")


def node_in(ns: Namespace, cfg: Path, log: IO[str], location: str | None = None) -> Node:
    """A ``pymon run`` node inside ``ns``, its web UI on the namespace's address;
    ``--location`` given, it is named ``n-LOCATION``, else after the namespace."""
    return Node(
        f"n-{location}" if location else ns.name,
        cfg,
        log,
        host=ns.address,
        wrap=functools.partial(exec_argv, ns),
        args=("--location", location) if location else (),
    )


def write_config(
    path: Path, db: Path, net: Network, port: int, sink: MailSink, *, quorum: int = 2
) -> None:
    """One tcp service, ``web``, on the host's target port ``port``, checked from every
    location each second (flap guard 1, no flap detection: each cut counts at once),
    its notices mailed to ``sink``; short cluster times, as tests/support/nodes.py's."""
    path.write_text(
        f"""
storage: {{url: "sqlite:///{db}", flush_interval: 100ms}}
cluster: {{heartbeat: 200ms, lease: 2s, shards: 4}}
reload: {{watch: false}}
notifications:
  channels:
    {sink.channel()}
services:
  - name: web
    type: tcp
    host: {net.target}
    port: {port}
    interval: 1s
    timeout: 1s
    notify: [mail]
    flap_guard: {{ok: 1, failed: 1}}
    flap_detection: {{enabled: false}}
    locations: [{", ".join(LOCATIONS)}]
    quorum: {quorum}
"""
    )
