"""Fixtures the notify tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.notify.alert_fake import AlertService


@pytest.fixture
async def service() -> AsyncIterator[AlertService]:
    """A started stand-in for an alerting service's HTTP API (PagerDuty, Opsgenie, an
    apprise ``json://`` target) that records each request."""
    fake = await AlertService().start()
    yield fake
    await fake.stop()
