"""The log channel: one line per notice on the ``pymon.notice`` logger."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from pymon.config.schema import LogChannel
from pymon.model import NoticeKind, Status
from pymon.notify.log import LOGGER, LogSender
from tests.notify.helpers import make_context, make_notice

CONTEXT = make_context()


def channel(**keys: Any) -> LogSender:
    return LogSender("log", LogChannel.model_validate({"type": "log", **keys}))


async def test_logs_one_line_at_the_default_warning_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    await channel().send(make_notice(), CONTEXT)
    [record] = caplog.records
    assert record.name == "pymon.notice"
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "notice problem: db FAILED - connection refused (incident inc-7)"
    )


@pytest.mark.parametrize(("level", "number"), [("info", logging.INFO), ("error", logging.ERROR)])
async def test_logs_at_the_configured_level(
    caplog: pytest.LogCaptureFixture, level: str, number: int
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    await channel(level=level).send(make_notice(), CONTEXT)
    assert [record.levelno for record in caplog.records] == [number]


async def test_a_notice_without_an_incident_names_none(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    notice = make_notice(kind=NoticeKind.RECOVERY, status=Status.OK, message="back", incident=None)
    await channel().send(notice, CONTEXT)
    assert caplog.records[0].getMessage() == "notice recovery: db OK - back"


async def test_a_hostile_message_cannot_forge_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    message = "down\n2024-01-01 CRITICAL forged line\r\x1b[2J\x00 %s %(x)s"
    await channel().send(make_notice(message=message), CONTEXT)
    text = caplog.records[0].getMessage()
    assert text == (
        "notice problem: db FAILED - down 2024-01-01 CRITICAL forged line [2J %s %(x)s"
        " (incident inc-7)"
    )


async def test_never_logs_the_ack_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    await channel().send(make_notice(), CONTEXT)
    assert "0123456789abcdef0123" not in caplog.text


async def test_close_is_harmless() -> None:
    sender = channel()
    await sender.close()
    await sender.send(make_notice(), CONTEXT)
