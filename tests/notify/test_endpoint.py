"""The HTTP side the webhook, PagerDuty and Opsgenie channels share: Retry-After, URLs shown."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from pymon.notify.endpoint import display_url, parse_retry_after

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "wait"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        (formatdate(NOW + 90, usegmt=True), 90.0),
        (formatdate(NOW - 90, usegmt=True), 0.0),  # a date gone by: at once
        ("99999999", 86400.0),  # a day at most
        (None, None),
        ("", None),
        ("-5", None),
        ("1.5", None),  # delta-seconds are whole
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00", None),  # a date without its GMT is not an HTTP date
    ],
)
def test_retry_after_reads_seconds_and_http_dates(value: str | None, wait: float | None) -> None:
    assert parse_retry_after(value, NOW) == wait


def test_a_url_is_shown_without_credentials_query_or_fragment() -> None:
    shown = display_url("https://user:pw@hooks.example.org/h/1?token=abc#x")
    assert shown == "https://hooks.example.org/h/1"
