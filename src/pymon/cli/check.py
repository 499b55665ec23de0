"""Commands that try something once, no daemon running: ``pymon check`` runs one
check (a configured service or an ad-hoc target) and prints a Nagios-style line;
``pymon config validate`` checks a config file, and with ``--against`` says what
reloading it on a running daemon would change.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

import click
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from pymon.checks import REGISTRY
from pymon.cli.common import config_option, fail_config, load
from pymon.client import Client, ClientError
from pymon.config.load import load_config, load_config_text
from pymon.config.schema import Config
from pymon.errors import ConfigError
from pymon.locations import at
from pymon.model import Status

__all__ = ["EXIT_CODES", "check", "config"]

# Nagios plugin exit codes: 0 ok, 1 warning, 2 critical, 3 unknown.
EXIT_CODES = {
    Status.OK: 0,
    Status.DISABLED: 0,
    Status.WARN: 1,
    Status.ERROR: 2,
    Status.FAILED: 2,
    Status.UNKNOWN: 3,
}


def _parse_adhoc(args: list[str]) -> dict[str, Any]:
    """``--key value`` / ``--key=value`` pairs; values read as YAML; a repeated key makes a list."""
    yaml = YAML(typ="safe")
    keys: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise click.UsageError(f"expected --key value, got {arg!r}")
        key, eq, raw = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args):
                raise click.UsageError(f"--{key} needs a value")
            i += 1
            raw = args[i]
        try:
            value = yaml.load(raw) if raw else raw
        except YAMLError:
            value = raw
        key = key.replace("-", "_")
        if key in keys:
            prior = keys[key]
            keys[key] = [*prior, value] if isinstance(prior, list) else [prior, value]
        else:
            keys[key] = value
        i += 1
    return keys


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@config_option("Config file holding the service NAME.")
@click.argument("target")
@click.pass_context
def check(ctx: click.Context, config_path: str | None, target: str) -> None:
    """Run one check once, print a Nagios-style line; exit 0 ok, 1 warn, 2 error/failed, 3 unknown.

    \b
    pymon check -c pymon.yaml NAME          a configured service
    pymon check TYPE --key value ...        an ad-hoc target, e.g.
    pymon check tcp --host 127.0.0.1 --port 22
    """
    from pymon.engine.once import check_once

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if config_path is not None:
        if ctx.args:
            raise click.UsageError("with -c, give only the service NAME")
        config = load(config_path)
        service = config.service(target)
        if service is not None and service.locations:
            # The service itself checks nothing (its locations do): run the check once
            # from here, judged as each of its locations judges it.
            service = config.service(at(target, service.locations[0]))
        if service is None:
            known = ", ".join(s.name for s in config.listed_services) or "none"
            raise click.UsageError(f"no service {target!r} in {config_path} (services: {known})")
    else:
        if target not in REGISTRY:
            known = ", ".join(sorted(REGISTRY))
            raise click.UsageError(
                f"unknown check type {target!r} (known: {known}); "
                "to run a configured service give -c FILE"
            )
        keys = {"name": target, "type": target, **_parse_adhoc(ctx.args)}
        try:
            config = load_config_text(json.dumps({"services": [keys]}), "<command line>")
        except ConfigError as err:
            for issue in err.issues:
                click.echo(f"pymon check: {issue.path}: {issue.message}", err=True)
            sys.exit(3)
        service = config.services[0]
    result, status, message = asyncio.run(check_once(service))
    perf = " ".join(f"{_perf_label(k)}={v:g}" for k, v in result.metrics.items())
    click.echo(f"{status.value.upper()} - {message}" + (f"|{perf}" if perf else ""))
    sys.exit(EXIT_CODES[status])


def _perf_label(label: str) -> str:
    # Nagios performance data quotes labels with spaces or quotes, doubling quotes.
    if any(c in label for c in " '=;"):
        return "'" + label.replace("'", "''") + "'"
    return label


@click.group()
def config() -> None:
    """Work with config files."""


@config.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--against",
    metavar="URL",
    default=None,
    help="A running daemon: also print what reloading FILE there would change.",
)
@click.option(
    "--token", envvar="PYMON_TOKEN", default=None, help="A web.auth token (or $PYMON_TOKEN)."
)
def validate(file: str, against: str | None, token: str | None) -> None:
    """Check FILE; print every error as FILE:LINE: key.path: what is wrong."""
    from pymon.notify.templates import Templates, template_dir

    try:
        cfg = load_config(file)
    except ConfigError as err:
        fail_config(err)
    problems = Templates(template_dir(cfg)).check()
    for problem in problems:
        click.echo(f"{file}: notifications.templates: {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo(f"{file}: ok ({_counted(cfg)})")
    if against is not None:
        _print_diff(cfg, Client(against, token=token))


def _counted(cfg: Config) -> str:
    """``12 services``, and ``, 9 location checks`` when some services have locations."""
    listed = len(cfg.listed_services)
    checks = len(cfg.services) - listed
    return f"{listed} services" + (f", {checks} location checks" if checks else "")


def _print_diff(cfg: Config, client: Client) -> None:
    """What a reload of ``cfg`` would change on the daemon ``client`` talks to."""
    from pymon.engine.reconcile import diff_fingerprints, fingerprints

    try:
        running = client.config()
    except ClientError as exc:
        click.echo(f"pymon config validate: {exc}", err=True)
        sys.exit(1)
    changes = diff_fingerprints(running.get("services") or {}, fingerprints(cfg))
    click.echo(f"against {client.url} ({running.get('source')}): {changes.summary()}")
    for what, names in (
        ("+", changes.added),
        ("~", changes.changed),
        ("-", changes.removed),
    ):
        for name in names:
            click.echo(f"  {what} {name}")
