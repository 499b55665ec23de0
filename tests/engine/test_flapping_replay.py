"""Flapping replayed end to end: a real daemon, plugin checks whose script answers from a
schedule, notices counted per thread at a real SMTP sink.

Each service flaps (down, then up, every 1.5 intervals) for 20 minutes, then stays up.
Its schedule is shifted by a different offset, and the scheduler gives each name its own
phase, so the checks meet the flapping at several phases. The daemon runs on a fake
clock the test moves in steps; the script reads that clock from a file, so what each
check answers depends on the schedule alone, never on how fast this machine is.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from pymon.config.load import load_config_text
from pymon.daemon import Daemon
from tests.support.clock import FakeClock
from tests.support.mail import MailSink, ReceivedMail
from tests.support.waiting import wait_for

INTERVAL = 60
HALF = 90  # down for 1.5 intervals, then up for 1.5 intervals
FLAPPING_UNTIL = 1200
STEADY_UNTIL = 2800
STEP = 5
OFFSETS = (0, 30, 60, 90, 120, 150)

# Down during the odd half periods of the shifted schedule, until the flapping ends.
SCRIPT = """\
#!/bin/sh
now=$(cat "$1")
t=$((now + $2))
if [ "$now" -lt "$4" ] && [ $(( (t / $3) % 2 )) -eq 1 ]; then
  echo "CRITICAL - down at $now"; exit 2
fi
echo "OK - up at $now"; exit 0
"""


def config(tmp_path: Path, sink: MailSink, script: Path, clock_file: Path) -> str:
    services = "\n".join(
        f"  - {{name: flap-{offset}, type: plugin, command: [/bin/sh, '{script}', "
        f"'{clock_file}', {offset}, {HALF}, {FLAPPING_UNTIL}]}}"
        for offset in OFFSETS
    )
    return f"""
storage: {{url: "sqlite:///{tmp_path}/p.db"}}
web: {{enabled: false}}
defaults: {{interval: {INTERVAL}s, timeout: 10s}}
notifications:
  channels:
    {sink.channel()}
services:
{services}
"""


def kind_of(mail: ReceivedMail) -> str:
    """problem, recovery, flapping_started or flapping_stopped, from the notice key."""
    key = str(mail.message["X-Pymon-Notice"])
    for kind in ("problem", "recovery", "flapping_started", "flapping_stopped"):
        if f":{kind}" in key:
            return kind
    raise AssertionError(f"unexpected notice {key}")


async def test_flapping_sends_one_problem_at_most_and_closes_every_thread(
    tmp_path: Path,
) -> None:
    script = tmp_path / "schedule.sh"
    script.write_text(SCRIPT)
    clock_file = tmp_path / "now"
    clock_file.write_text("0")
    clock = FakeClock()
    with MailSink() as sink:
        d = Daemon(load_config_text(config(tmp_path, sink, script, clock_file)), clock=clock)
        await d.start()
        try:
            while clock.monotonic() < STEADY_UNTIL:
                # A check started during this step sees the step's end: its result is
                # judged at that time too, since the fake clock stands still meanwhile.
                clock_file.write_text(str(round(clock.monotonic()) + STEP))
                await clock.advance(STEP)
                await wait_for(lambda: d.runtime.scheduler.in_flight == 0)
            await d.writer.flush()
            sent = len(await d.store.notices(limit=1000))
            mails = await sink.await_for(sent)
        finally:
            await d.stop()

    by_service: dict[str, list[ReceivedMail]] = defaultdict(list)
    for mail in mails:
        by_service[str(mail.message["X-Pymon-Service"]).rpartition("/")[2]].append(mail)
    assert sorted(by_service) == sorted(f"flap-{offset}" for offset in OFFSETS)
    for name, received in by_service.items():
        kinds = [kind_of(m) for m in received]
        assert kinds.count("flapping_started") == 1, (name, kinds)
        assert kinds[-1] == "flapping_stopped", (name, kinds)
        started = kinds.index("flapping_started")
        # At most one problem notice before flapping is seen; nothing while it lasts.
        assert kinds[:started].count("problem") <= 1, (name, kinds)
        assert kinds[started + 1 :] == ["flapping_stopped"], (name, kinds)
        # Every thread a problem notice opened ends with a recovery or the flapping notice.
        threads: dict[str, list[str]] = defaultdict(list)
        for mail, kind in zip(received, kinds, strict=True):
            if mail.message["X-Pymon-Incident"] is not None:
                threads[str(mail.message["X-Pymon-Incident"])].append(kind)
        for incident, thread in threads.items():
            if "problem" in thread:
                assert thread[-1] in ("recovery", "flapping_started"), (name, incident, thread)
        assert "flapping started: notices held" in str(received[started].message["Subject"])
