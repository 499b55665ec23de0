"""The ``pymon`` command line: run, check, config validate, ack, nodes, shell, report,
bench, capacity, hash-password. ``main`` is the ``pymon`` script's entry point; ``cli``
the click group, its commands listed here, each defined in the module of its kind:

``run.py``
    ``run``, the daemon in the foreground;
``check.py``
    ``check`` and ``config validate``, tried once without a daemon;
``remote.py``
    ``ack``, ``nodes`` and ``shell``, on a running daemon;
``report.py``
    ``report uptime``, the running daemon's SLA report;
``tools.py``
    ``bench`` and ``hash-password``;
``capacity.py``
    ``capacity``, the limits of a config on this machine;
``common.py``
    the ``-c/--config`` option and loading the config.
"""

from __future__ import annotations

import click

from pymon import __version__
from pymon.cli.capacity import capacity
from pymon.cli.check import check, config
from pymon.cli.remote import ack, nodes, shell
from pymon.cli.report import report
from pymon.cli.run import run
from pymon.cli.tools import bench, hash_password

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pymon")
def cli() -> None:
    """pymon: watch hosts, services and processes; tell the right people once."""


for _command in (run, check, config, ack, nodes, shell, report, bench, capacity, hash_password):
    cli.add_command(_command)


def main() -> None:
    """Entry point of the ``pymon`` script."""
    cli(prog_name="pymon")
