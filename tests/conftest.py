"""Suite-wide test policy.

A test that needs a system component which is absent calls :func:`need` (or skips
with a reason); with ``PYMON_REQUIRE_ALL=1`` (set by ``.ci/run``) such a skip is a
failure, so CI cannot pass by silently skipping the real thing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.postgres import PostgresServer, PostgresUnavailable
from tests.support.servers import TcpListener

REQUIRE_ALL = os.environ.get("PYMON_REQUIRE_ALL") == "1"


@contextlib.contextmanager
def postgres_or_skip() -> Iterator[PostgresServer]:
    """A started throwaway PostgreSQL, stopped on exit; the test skips (fails under
    PYMON_REQUIRE_ALL) when the server binaries are not installed."""
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as exc:
        need(False, str(exc))
        raise  # need() does not return when it is not ok; this keeps mypy honest
    try:
        yield server
    finally:
        server.stop()


def need(ok: bool, reason: str) -> None:
    """Skip the calling test with ``reason`` unless ``ok``; fail instead under PYMON_REQUIRE_ALL."""
    if ok:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required component missing (PYMON_REQUIRE_ALL=1): {reason}")
    pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and call.when in ("setup", "call"):
        report.outcome = "failed"
        report.longrepr = f"skipped under PYMON_REQUIRE_ALL=1: {report.longrepr}"


@pytest.fixture
async def listener() -> AsyncIterator[TcpListener]:
    """A TCP listener on 127.0.0.1 that accepts and closes: an ``ok`` target."""
    srv = TcpListener()
    await srv.start()
    yield srv
    await srv.stop()
