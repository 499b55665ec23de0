"""What the ``pymon`` commands share: the ``-c/--config`` option and loading the
config it names (else ``./pymon.yaml``, else the built-in demo), every error printed
and exit status 1 when it is invalid.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import click

from pymon.config.load import load_config, load_demo_config
from pymon.config.schema import Config
from pymon.errors import ConfigError

__all__ = ["config_option", "fail_config", "load"]

FC = TypeVar("FC", bound=Callable[..., object])


def fail_config(err: ConfigError) -> NoReturn:
    """Print every issue of ``err`` and how many, and exit 1."""
    for issue in err.issues:
        click.echo(str(issue), err=True)
    n = len(err.issues)
    click.echo(f"{n} error{'s' if n != 1 else ''} in config", err=True)
    sys.exit(1)


def load(path: str | None) -> Config:
    """The config at ``path``, else ``./pymon.yaml``, else the demo; exits 1 if invalid."""
    try:
        if path is not None:
            return load_config(path)
        if Path("pymon.yaml").exists():
            return load_config("pymon.yaml")
        return load_demo_config()
    except ConfigError as err:
        fail_config(err)


def config_option(
    text: str = "Config file (default ./pymon.yaml, else the built-in demo).",
) -> Callable[[FC], FC]:
    """The ``-c/--config FILE`` option (as ``config_path``), ``text`` its help."""
    return click.option(
        "-c", "--config", "config_path", type=click.Path(dir_okay=False), default=None, help=text
    )
