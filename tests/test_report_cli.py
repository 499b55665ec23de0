"""``pymon report uptime`` as an operator runs it: a real subprocess against a real
web server on 127.0.0.1 serving the app over the fake port's seeded rollups."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator

import pytest

from tests.support.cli import pymon
from tests.support.servers import refused_port
from tests.web.reports_data import MIDNIGHT, seeded_port, serving

WINDOW = ["--since", str(MIDNIGHT - 2 * 86400), "--until", "2026-05-27"]


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with serving(seeded_port()) as address:
        yield address


async def test_the_report_as_a_table(url: str) -> None:
    done = await asyncio.to_thread(pymon, "report", "uptime", "--url", url, *WINDOW)
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.strip()}
    assert "2026-05-26 00:00 UTC to 2026-05-28 00:00 UTC" in done.stdout
    assert lines["api"][1:4] == ["95.833", "99.9", "missed"]
    assert lines["db"][1:4] == ["100.000", "99", "met"]
    assert lines["web"][1:4] == ["100.000", "-", "-"]
    # Down 2 hours over the two days, two incidents of an hour each.
    assert lines["api"][4:9] == ["2", "h", "0", "min", "2"]


async def test_the_report_as_csv_filtered_by_tag(url: str) -> None:
    done = await asyncio.to_thread(
        pymon, "report", "uptime", "--url", url, *WINDOW, "--tag", "web", "--csv"
    )
    assert done.returncode == 0, done.stderr
    table = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["service"], r["uptime_pct"][:6], r["sla_status"]) for r in table] == [
        ("web", "100", "no_target"),
        ("api", "95.833", "missed"),
    ]


async def test_maintenance_and_services_on_the_command_line(url: str) -> None:
    done = await asyncio.to_thread(
        pymon,
        *("report", "uptime", "--url", url, *WINDOW),
        *("--service", "db", "--include-maintenance", "--csv"),
    )
    assert done.returncode == 0, done.stderr
    (db,) = csv.DictReader(io.StringIO(done.stdout))
    assert (db["service"], db["sla_status"], db["downtime_minutes"]) == ("db", "missed", "120")


async def test_a_bad_window_and_an_absent_daemon_are_said_clearly(url: str) -> None:
    bad = await asyncio.to_thread(pymon, "report", "uptime", "--url", url, "--since", "soon")
    assert bad.returncode == 1
    assert "422" in bad.stderr and "since" in bad.stderr
    gone = f"http://127.0.0.1:{refused_port()}"
    down = await asyncio.to_thread(pymon, "report", "uptime", "--url", gone)
    assert down.returncode == 1
    assert f"cannot reach pymon at {gone}" in down.stderr
