"""Where the web server is reached: by commands on this machine, and by people (links)."""

from __future__ import annotations

import socket

import pytest

from pymon.config.schema import WebConfig


@pytest.mark.parametrize(
    ("listen", "local"),
    [
        ("0.0.0.0:8080", "http://127.0.0.1:8080/p"),
        ("[::]:9", "http://[::1]:9/p"),
        ("10.0.0.5:80", "http://10.0.0.5:80/p"),
        ("[::1]:8080", "http://[::1]:8080/p"),
    ],
)
def test_commands_reach_a_wildcard_listener_on_loopback(listen: str, local: str) -> None:
    assert WebConfig(listen=listen, base_path="/p").local_url() == local


def test_links_name_this_host_for_a_wildcard_listener() -> None:
    assert WebConfig(listen="0.0.0.0:8080").url() == f"http://{socket.gethostname()}:8080"
