"""Commands on a running daemon, over its JSON API: ``pymon ack`` (and ``--undo``),
``pymon nodes`` and ``pymon shell``. Both find the daemon by ``--url``, else by the config's web
address, and pass ``--token`` (or ``$PYMON_TOKEN``).
"""

from __future__ import annotations

import getpass
import socket
import sys
from collections.abc import Callable

import click

from pymon.cli.common import config_option, load
from pymon.client import Client, ClientError

__all__ = ["ack", "api_url", "daemon_options", "nodes", "shell"]


def api_url(url: str | None, config_path: str | None) -> str:
    """``--url``, else where the config (``-c``, ``./pymon.yaml``, the demo) serves the web UI."""
    if url:
        return url
    return load(config_path).web.local_url()


def daemon_options(command: Callable[..., None]) -> Callable[..., None]:
    """``--url`` and ``--token``: how a command reaches the running daemon."""
    command = click.option(
        "--token",
        envvar="PYMON_TOKEN",
        default=None,
        help="A web.auth token (or $PYMON_TOKEN); not needed on loopback without auth.",
    )(command)
    return click.option(
        "--url", default=None, help="The daemon's web address (default: from the config)."
    )(command)


def _default_author() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "cli"
    return f"{user}@{socket.gethostname()}"


@click.command()
@config_option()
@daemon_options
@click.option("-m", "--message", "comment", default="", help="Why (shown with the state).")
@click.option("--author", default=None, help="Who (default: user@host).")
@click.option("--expires", default=None, help="End the acknowledgement after e.g. 2h.")
@click.option("--undo", is_flag=True, help="Take the acknowledgement back instead.")
@click.argument("name")
def ack(
    config_path: str | None,
    url: str | None,
    token: str | None,
    comment: str,
    author: str | None,
    expires: str | None,
    undo: bool,
    name: str,
) -> None:
    """Acknowledge service NAME's open incident on the running daemon (notices stop)."""
    client = Client(api_url(url, config_path), token=token)
    who = author or _default_author()
    try:
        if undo:
            answer = client.unacknowledge(name, author=who)
        else:
            answer = client.acknowledge(name, author=who, comment=comment, expires=expires)
    except ClientError as exc:
        click.echo(f"pymon ack: {exc}", err=True)
        sys.exit(1)
    incident = answer.get("incident") or {}
    if undo:
        click.echo(f"{name}: acknowledgement taken back ({incident.get('status', '?')})")
    else:
        click.echo(f"{name}: {incident.get('status', '?')} acknowledged by {who}")


@click.command()
@config_option()
@daemon_options
def nodes(config_path: str | None, url: str | None, token: str | None) -> None:
    """The cluster's nodes as the running daemon sees them: alive, shards, heartbeat
    age, checks/s, config checksum and location (the shell's ``nodes``)."""
    from pymon.shell import main as shell_main

    address = api_url(url, config_path)
    sys.exit(shell_main(address, token=token, commands=["nodes"], author=_default_author()))


@click.command()
@config_option()
@daemon_options
@click.option(
    "-e",
    "--execute",
    "commands",
    multiple=True,
    metavar="COMMAND",
    help="Run COMMAND and exit (repeatable); exit 1 if any failed.",
)
def shell(
    config_path: str | None, url: str | None, token: str | None, commands: tuple[str, ...]
) -> None:
    """An interactive shell on the running daemon: status, show, ack, maint, watch, ...

    \b
    pymon shell                         prompt, with history and TAB completion
    pymon shell -e status -e "ack db 'disk swap'"   for scripts
    """
    from pymon.shell import main as shell_main

    address = api_url(url, config_path)
    sys.exit(shell_main(address, token=token, commands=list(commands), author=_default_author()))
