"""A gateway and its children failing and recovering together, replayed through the real
daemon: plugin checks whose script answers from a schedule file, notices counted at a
real SMTP sink. One root cause gives one problem and one recovery notice (the
gateway's) whichever order the services happen to see the outage in; a child failing
alone is still notified."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pymon.config.load import load_config_text
from pymon.daemon import Daemon
from pymon.model import EventKind, NoticeKind, Status
from tests.support.mail import MailSink
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

INTERVAL = 0.6
PARENT = "gateway"
CHILDREN = [f"app-{i}" for i in range(8)]

# Down while the schedule holds "down" (the whole site) or "down-NAME" (one service).
SCRIPT = """#!/bin/sh
if [ -e "{schedule}/down" ] || [ -e "{schedule}/down-$1" ]; then
  echo "CRITICAL - $1 does not answer"; exit 2
fi
echo "OK - $1 answers"; exit 0
"""


def config(tmp_path: Path, sink: MailSink, script: Path) -> str:
    def plugin(name: str, extra: str = "") -> str:
        return f"  - {{name: {name}, type: plugin, command: [/bin/sh, {script}, {name}]{extra}}}"

    services = [plugin(PARENT)] + [plugin(c, f", depends_on: [{PARENT}]") for c in CHILDREN]
    return f"""
instance: {{name: lab, organization: ACME}}
storage: {{url: "sqlite:///{tmp_path}/p.db", flush_interval: 50ms}}
web: {{listen: "127.0.0.1:0"}}
defaults:
  interval: {INTERVAL}s
  retry_interval: 150ms
  timeout: 5s
  flap_guard: {{error: 2, ok: 2}}
  flap_detection: {{enabled: false}}
notifications:
  delivery: {{backoff: 100ms, max_backoff: 200ms}}
  channels:
    {sink.channel()}
services:
""" + "\n".join(services)


@pytest.fixture
def sink() -> Iterator[MailSink]:
    with MailSink() as s:
        yield s


@pytest.fixture
async def site(tmp_path: Path, sink: MailSink) -> AsyncIterator[tuple[Daemon, Path]]:
    schedule = tmp_path / "schedule"
    schedule.mkdir()
    script = tmp_path / "answer.sh"
    script.write_text(SCRIPT.format(schedule=schedule))
    d = Daemon(load_config_text(config(tmp_path, sink, script)))
    await d.start()
    try:
        await wait_for(lambda: all_confirmed(d, Status.OK))
        yield d, schedule
    finally:
        await d.stop()


def all_confirmed(d: Daemon, status: Status, names: list[str] | None = None) -> bool:
    states = d.runtime.states
    return all(
        (s := states.get(n)) is not None and s.confirmed and s.status is status
        for n in names or [PARENT, *CHILDREN]
    )


async def at_offset(d: Daemon, fraction: float) -> None:
    """Sleep until ``fraction`` of an interval after the gateway's next due time.

    This only sets the scene (which services see a change before the gateway does);
    the assertions hold for any order, so a late wake-up cannot fail the test.
    """
    rhythm = d.runtime.scheduler.rhythm(PARENT)
    assert rhythm is not None
    anchor, interval, _ = rhythm
    now = d.runtime.clock.monotonic()
    target = anchor + fraction * interval
    target += max(0, int((now - target) // interval) + 1) * interval
    await asyncio.sleep(target - now)


def on_demand_runs(caplog: pytest.LogCaptureFixture) -> int:
    """How many times a child had the gateway checked at once, before notifying."""
    wanted = f"checking {PARENT} now, before notifying"
    return sum(r.getMessage().endswith(wanted) for r in caplog.records)


async def settled(d: Daemon) -> None:
    """Everything ok again, every incident closed, every notice delivered."""
    await wait_for(lambda: all_confirmed(d, Status.OK) and not d.runtime.incidents)
    await d.runtime.writer.flush()
    async with asyncio.timeout(15):
        while await d.runtime.deliveries(state="pending"):  # noqa: ASYNC110
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    "fraction",
    [
        0.05,  # the gateway sees the outage last: every child confirms first
        0.5,  # about half the children before the gateway, half after
        0.95,  # the gateway sees it first
    ],
)
async def test_one_root_cause_gives_one_problem_and_one_recovery(
    site: tuple[Daemon, Path], sink: MailSink, fraction: float, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pymon")
    d, schedule = site
    await at_offset(d, fraction)
    (schedule / "down").touch()
    await wait_for(
        lambda: (
            PARENT in d.runtime.incidents
            and all(d.runtime.states[c].unreachable for c in CHILDREN)
            and all(c in d.runtime.incidents for c in CHILDREN)
        )
    )
    await at_offset(d, fraction)
    (schedule / "down").unlink()
    await settled(d)

    notices = sorted(await d.runtime.store.notices(limit=1000), key=lambda n: n.at)
    assert [(n.service, n.kind) for n in notices] == [
        (PARENT, NoticeKind.PROBLEM),
        (PARENT, NoticeKind.RECOVERY),
    ]
    mails = sink.messages
    assert [m.message["X-Pymon-Service"] for m in mails] == ["pymon://lab/gateway"] * 2
    for child in CHILDREN:
        kinds = [e.kind for e in await d.runtime.events(100, child)]
        assert EventKind.INCIDENT_OPENED in kinds and EventKind.INCIDENT_CLOSED in kinds
        assert EventKind.UNREACHABLE in kinds
    # However many children asked, the gateway was run out of turn at most once: its
    # fresh failure is retried on its own rhythm, and once confirmed nobody waits.
    assert on_demand_runs(caplog) <= 1


async def test_a_child_failing_alone_is_notified(
    site: tuple[Daemon, Path], sink: MailSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pymon")
    d, schedule = site
    (schedule / "down-app-3").touch()
    await wait_for(lambda: "app-3" in d.runtime.incidents)
    (schedule / "down-app-3").unlink()
    await settled(d)

    notices = sorted(await d.runtime.store.notices(limit=1000), key=lambda n: n.at)
    assert [(n.service, n.kind) for n in notices] == [
        ("app-3", NoticeKind.PROBLEM),
        ("app-3", NoticeKind.RECOVERY),
    ]
    assert len(sink.messages) == 2
    # Notified once the gateway answered ok after app-3 failed: run out of turn for it,
    # unless its regular run happened to come first.
    assert on_demand_runs(caplog) <= 1
    assert not any(e.kind is EventKind.UNREACHABLE for e in await d.runtime.events(100, "app-3"))
