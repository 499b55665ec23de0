"""``pymon report uptime``: the running daemon's SLA report, over its JSON API, as a
table (rich) or CSV on standard output (docs/reports.md)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pymon.cli.common import config_option
from pymon.cli.remote import api_url, daemon_options
from pymon.client import Client, ClientError, ReportFilters
from pymon.text import span

__all__ = ["report", "report_table"]

_VERDICTS = {
    "met": Text("met", style="green"),
    "missed": Text("missed", style="bold red"),
    "no_target": Text("-", style="dim"),
    "no_data": Text("no data", style="yellow"),
}


def _minutes(value: Any) -> str:
    """Minutes as people read them (``12 min``, ``3 h 5 min``); ``-`` for none."""
    return "-" if value is None else span(float(value) * 60)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f}"


def _when(at: Any) -> str:
    return datetime.fromtimestamp(float(at), UTC).strftime("%Y-%m-%d %H:%M UTC")


def report_table(answer: dict[str, Any]) -> Table:
    """The API's JSON report as a table: a row per service, the target's verdict coloured."""
    table = Table(
        title=f"Uptime {_when(answer['since'])} to {_when(answer['until'])}",
        box=box.SIMPLE_HEAD,
    )
    for header in ("service", "uptime %", "sla %", "sla", "downtime", "incidents"):
        table.add_column(header, justify="left" if header in ("service", "sla") else "right")
    for header in ("longest", "MTTR", "MTBF", "no data"):
        table.add_column(header, justify="right")
    for row in answer.get("services") or []:
        table.add_row(
            str(row["service"]),
            _pct(row["uptime_pct"]),
            "-" if row["sla"] is None else f"{row['sla']:g}",
            _VERDICTS.get(str(row["sla_status"]), Text(str(row["sla_status"]))),
            _minutes(row["downtime_minutes"]),
            str(row["incidents"]),
            _minutes(row["longest_incident_minutes"]),
            _minutes(row["mttr_minutes"]),
            _minutes(row["mtbf_minutes"]),
            _minutes(row["no_data_minutes"]),
        )
    return table


@click.group()
def report() -> None:
    """Reports from the running daemon (``pymon report uptime``)."""


@report.command()
@config_option()
@daemon_options
@click.option("--since", default=None, help="Start: e.g. 30d (ago), an ISO date, epoch seconds.")
@click.option("--until", default=None, help="End (default now); a bare date means its end.")
@click.option("--service", "services", multiple=True, help="A service (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Services with this tag (repeatable).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout instead of a table.")
@click.option(
    "--include-maintenance", is_flag=True, help="Count time in maintenance as up or down."
)
def uptime(
    config_path: str | None,
    url: str | None,
    token: str | None,
    since: str | None,
    until: str | None,
    services: tuple[str, ...],
    tags: tuple[str, ...],
    as_csv: bool,
    include_maintenance: bool,
) -> None:
    """Per service: uptime %, downtime, incidents, MTTR, MTBF and the sla target met or
    missed, over the last 30 days unless --since/--until say otherwise.

    \b
    pymon report uptime --since 30d --tag web
    pymon report uptime --since 2026-01-01 --until 2026-03-31 --csv > q1.csv
    """
    client = Client(api_url(url, config_path), token=token, timeout=60.0)
    asked = ReportFilters(since, until, services, tags, include_maintenance)
    try:
        if as_csv:
            click.echo(client.uptime_report_csv(asked), nl=False)
            return
        answer = client.uptime_report(asked)
    except ClientError as exc:
        click.echo(f"pymon report uptime: {exc}", err=True)
        sys.exit(1)
    console = Console()
    if not console.is_terminal:
        # Piped or captured: no terminal to fit, so do not cut the rows to 80 columns.
        console = Console(width=160)
    console.print(report_table(answer))
