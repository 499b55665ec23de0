"""The heartbeat check on a fake clock, and the board's token lookup."""

from __future__ import annotations

import aiohttp
import pytest
from pydantic import ValidationError

from pymon.checks import check_type, run_check
from pymon.checks.base import CheckContext
from pymon.checks.heartbeat import HeartbeatBoard, HeartbeatSpec
from pymon.model import CheckResult, Heartbeat, Status
from tests.support.clock import FakeClock

TOKEN = "s3cret-token-0123456789"


async def no_http() -> aiohttp.ClientSession:
    raise AssertionError("a heartbeat check makes no HTTP request")


async def run(board: HeartbeatBoard | None, clock: FakeClock, grace: float = 10) -> CheckResult:
    ctx = CheckContext(
        timeout=1,
        http_session=no_http,
        clock=clock,
        service="job",
        interval=60,
        pushes=board,
    )
    return await run_check(check_type("heartbeat"), HeartbeatSpec(token=TOKEN, grace=grace), ctx)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def board(clock: FakeClock) -> HeartbeatBoard:
    return HeartbeatBoard(clock.time(), {"job": TOKEN, "other": "another-token-abcdefgh"})


async def test_waiting_for_first_push_is_unknown(board: HeartbeatBoard, clock: FakeClock) -> None:
    await clock.advance(30)
    result = await run(board, clock)
    assert result.status is Status.UNKNOWN
    assert "waiting for the first heartbeat" in result.message


async def test_no_push_within_interval_plus_grace_is_failed(
    board: HeartbeatBoard, clock: FakeClock
) -> None:
    await clock.advance(71)
    result = await run(board, clock)
    assert result.status is Status.FAILED
    assert "no heartbeat received in 71s" in result.message


async def test_fresh_push_is_ok_with_age(board: HeartbeatBoard, clock: FakeClock) -> None:
    board.record(Heartbeat("job", clock.time(), True, "backup done"))
    await clock.advance(5)
    result = await run(board, clock)
    assert result.status is Status.OK
    assert result.message == "last heartbeat 5s ago: backup done"
    assert result.metrics == {"age_s": 5.0}


async def test_push_reporting_failure_is_error(board: HeartbeatBoard, clock: FakeClock) -> None:
    board.record(Heartbeat("job", clock.time(), False, "disk full"))
    result = await run(board, clock)
    assert result.status is Status.ERROR
    assert "job reported failure" in result.message and "disk full" in result.message


async def test_stale_push_is_failed(board: HeartbeatBoard, clock: FakeClock) -> None:
    board.record(Heartbeat("job", clock.time(), True, ""))
    await clock.advance(70.5)
    result = await run(board, clock)
    assert result.status is Status.FAILED
    assert result.message.startswith("no heartbeat for 70s (allowed 70s)")


async def test_outside_a_daemon_it_cannot_run(clock: FakeClock) -> None:
    result = await run(None, clock)
    assert result.status is Status.UNKNOWN
    assert "pymon run" in result.message


def test_owner_finds_the_service_by_token(board: HeartbeatBoard) -> None:
    assert board.owner(TOKEN) == "job"
    assert board.owner("another-token-abcdefgh") == "other"
    assert board.owner(TOKEN[:-1]) is None
    assert board.owner("") is None


def test_an_older_push_does_not_replace_a_newer_one(board: HeartbeatBoard) -> None:
    board.record(Heartbeat("job", 100.0))
    board.record(Heartbeat("job", 50.0, ok=False))
    beat = board.get("job")
    assert beat is not None and beat.at == 100.0


def test_token_is_not_in_the_spec_repr() -> None:
    assert TOKEN not in repr(HeartbeatSpec(token=TOKEN))


@pytest.mark.parametrize("token", ["short", "has space in it 12345", "slash/in/token/12345"])
def test_weak_or_unsafe_tokens_are_refused(token: str) -> None:
    with pytest.raises(ValidationError):
        HeartbeatSpec(token=token)
