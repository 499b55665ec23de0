"""Models of the ``web`` section: listen address, base path, public URL, trusted
proxies, the users and tokens of ``web.auth`` (argon2id hashes, never passwords), and
the limits on connections (``web.connections``).

``split_host_port`` and ``check_host_port`` read a ``HOST:PORT`` value; the
acknowledgement server's ``listen`` uses them too.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Mapping
from typing import Annotated

import argon2
from pydantic import AfterValidator, Field, field_validator, model_validator

from pymon.checks.spec import StrictModel
from pymon.durations import Duration

__all__ = [
    "Argon2idHash",
    "WebAuthConfig",
    "WebConfig",
    "WebConnections",
    "WebToken",
    "WebUser",
    "check_host_port",
    "split_host_port",
]


def _check_argon2id(value: str) -> str:
    # Checked at load so that a mangled hash is a config error, not a login that
    # can never succeed. The value itself is never echoed: it is half a secret.
    try:
        params = argon2.extract_parameters(value)
    except (argon2.exceptions.InvalidHashError, ValueError):
        raise ValueError(
            "not an argon2id hash ($argon2id$v=19$...); make one with `pymon hash-password`"
        ) from None
    if params.type is not argon2.Type.ID:
        raise ValueError(
            f"an argon2{params.type.name.lower()} hash; pymon takes argon2id "
            "(make one with `pymon hash-password`)"
        )
    return value


Argon2idHash = Annotated[str, AfterValidator(_check_argon2id)]
"""An argon2id hash string as ``pymon hash-password`` prints it."""


class WebUser(StrictModel):
    """A person who may log in to the dashboard (and use HTTP Basic on the API)."""

    name: str = Field(min_length=1, max_length=200)
    password_hash: Argon2idHash


class WebToken(StrictModel):
    """A bearer token for scripts: ``Authorization: Bearer <token>``; only its hash is kept."""

    name: str = Field(min_length=1, max_length=200)
    token_hash: Argon2idHash


class WebAuthConfig(StrictModel):
    """Who may read and write through the web server (see docs/configuration.md#web).

    Reading is open unless ``read`` is true; writing needs a user or a token, except
    when none is configured and the server listens on loopback only.
    """

    read: bool = False
    users: list[WebUser] = Field(default_factory=list)
    tokens: list[WebToken] = Field(default_factory=list)
    session_ttl: Duration = Field(default=43200.0, gt=0)

    @property
    def configured(self) -> bool:
        """Whether any credential is configured (users or tokens)."""
        return bool(self.users or self.tokens)

    @model_validator(mode="after")
    def _unique_names(self) -> WebAuthConfig:
        for kind, names in (
            ("users", [u.name for u in self.users]),
            ("tokens", [t.name for t in self.tokens]),
        ):
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise ValueError(f"{kind}: name {repeated[0]!r} is used twice; names are unique")
        if self.read and not self.configured:
            raise ValueError("read: true needs users or tokens to read with")
        return self


def _check_network(value: str) -> str:
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address or CIDR network (e.g. 127.0.0.1, 10.0.0.0/8, ::1)"
        ) from None
    address = ipaddress.ip_address(value.strip().partition("/")[0])
    if network.network_address != address:
        raise ValueError(
            f"{value!r} has host bits set: write {network} (the network) or {address} (one address)"
        )
    return str(network)


class WebConnections(StrictModel):
    """How long a connection may take and how many there may be (see
    docs/configuration.md#web): a client that holds connections open without asking
    anything (slowloris, idle sockets) is closed, and one address cannot take them all.
    """

    header_timeout: Duration = Field(default=5.0, gt=0, le=300)
    idle_timeout: Duration = Field(default=5.0, gt=0, le=3600)
    max_total: int = Field(default=1000, ge=1, le=100_000)
    max_per_address: int = Field(default=100, ge=1, le=100_000)


class WebConfig(StrictModel):
    """The HTTP server for the API and the dashboard."""

    enabled: bool = True
    listen: str = "127.0.0.1:8080"
    base_path: str = ""
    public_url: str = ""
    auth: WebAuthConfig = Field(default_factory=WebAuthConfig)
    connections: WebConnections = Field(default_factory=WebConnections)
    trusted_proxies: list[Annotated[str, AfterValidator(_check_network)]] = Field(
        default_factory=list
    )
    max_body: int = Field(default=1_048_576, ge=1024, le=1_073_741_824)
    """The largest request body taken, in bytes; a larger one is refused with 413."""

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        return check_host_port(value)

    @field_validator("base_path")
    @classmethod
    def _check_base_path(cls, value: str) -> str:
        if value and re.fullmatch(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+/?", value) is None:
            raise ValueError(
                f"{value!r} is not a URL path such as /monitoring "
                "(starts with /; no spaces, ? or #)"
            )
        return value.rstrip("/")

    def host_port(self) -> tuple[str, int]:
        """``listen`` split into host and port."""
        return split_host_port(self.listen)

    def url(self) -> str:
        """Where people reach the dashboard (``public_url``, else from ``listen``), no
        trailing slash: the base of links in notices."""
        if self.public_url:
            return self.public_url.rstrip("/")
        name = socket.gethostname()
        return self._listen_url({"0.0.0.0": name, "::": name})

    def local_url(self) -> str:
        """Where a command on this machine reaches the server (a wildcard ``listen``
        becomes loopback of its family), no trailing slash."""
        return self._listen_url({"0.0.0.0": "127.0.0.1", "::": "::1"})

    def _listen_url(self, wildcards: Mapping[str, str]) -> str:
        host, port = self.host_port()
        host = wildcards.get(host, host)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}{self.base_path}".rstrip("/")


def check_host_port(value: str) -> str:
    # Checked at load so that a typo is a config error, not a crash when a server starts.
    _, sep, port = value.rpartition(":")
    if not sep or re.fullmatch(r"\d{1,5}", port, re.ASCII) is None or int(port) > 65535:
        raise ValueError(
            f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:8080, [::1]:8080, 0.0.0.0:8080)"
        )
    return value


def split_host_port(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``) as (host, port); an empty host is 127.0.0.1."""
    host, _, port = value.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)
