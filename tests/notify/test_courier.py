"""The courier process: SMTP conversations held outside the daemon, the journal line
written there at the 250, a courier that dies, and what it costs to import."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from pymon.notify import courier
from pymon.notify.base import DeliveryError
from pymon.notify.courier import _frame, _Frames, deliver
from pymon.notify.journal import Receipt
from tests.notify.test_email import make_config
from tests.support.mail import MailSink
from tests.support.servers import refused_port


def message(subject: str = "hello") -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = subject
    mail["From"] = "pymon@example.org"
    mail["To"] = "ops@example.org"
    mail.set_content("body")
    return mail


async def test_a_mail_goes_out_and_its_line_is_journaled_before_the_daemon_hears(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "p.db-sent-n1"
    fd = os.open(journal, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    heard: list[bytes] = []
    try:
        with MailSink() as sink:
            await deliver(
                make_config(sink.port),
                message(),
                receipt=Receipt(fd, "inc-1:problem:1", "mail"),
                # Called in the courier's reader thread once the line is in.
                accepted=lambda: heard.append(journal.read_bytes()),
            )
            [mail] = sink.messages
        assert mail.message["Subject"] == "hello"
        [line] = heard
        key, channel, at = json.loads(line)
        assert (key, channel) == ("inc-1:problem:1", "mail") and at > 0
    finally:
        os.close(fd)


async def test_a_refusal_comes_back_as_the_channels_error() -> None:
    port = refused_port()
    with pytest.raises(DeliveryError, match=f"smtp 127.0.0.1:{port}: connection refused"):
        await deliver(make_config(port), message())


async def test_a_courier_that_dies_fails_its_jobs_and_the_next_mail_starts_another() -> None:
    with MailSink() as sink:
        await deliver(make_config(sink.port), message("first"))
        first = courier._process()
        held = asyncio.Event()
        loop = asyncio.get_running_loop()
        sink.quit_open.clear()  # the courier's conversation now waits at QUIT

        def hold(_: object) -> None:
            loop.call_soon_threadsafe(held.set)  # from the sink's thread

        sink.on_message = hold
        sending = asyncio.create_task(deliver(make_config(sink.port), message("second")))
        await asyncio.wait_for(held.wait(), 30)
        first.proc.send_signal(signal.SIGKILL)
        sink.quit_open.set()
        # The 250 had not been read, or it had: either way the job ends, never hangs.
        with pytest.raises(DeliveryError, match="courier process ended"):
            await asyncio.wait_for(sending, 30)
        await deliver(make_config(sink.port), message("third"))
        assert courier._process() is not first
        assert [m.message["Subject"] for m in sink.messages][-1] == "third"


def test_frames_survive_any_split() -> None:
    items = [(1, "accepted"), (1, "failed", "x" * 100_000, True), (2, "sent")]
    data = b"".join(_frame(item) for item in items)
    for step in (1, 7, 4096, len(data)):
        frames = _Frames()
        got = [got for i in range(0, len(data), step) for got in frames.feed(data[i : i + step])]
        assert got == items


def test_an_oversized_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="courier frame"):
        list(_Frames().feed((1 << 30).to_bytes(4, "big")))


def test_the_courier_imports_neither_the_config_models_nor_the_database() -> None:
    # It runs beside every daemon that sends e-mail: ~15 MB, not ~50.
    probe = (
        "import sys, pymon.notify.courier as c;"
        "print(sorted(m for m in ('pydantic', 'sqlalchemy', 'jinja2') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
