"""Maintenance windows: config validation and the pure functions of engine/maintenance.py.

``now`` is a parameter of every function under test, so each case is a frozen
clock: an exact UTC instant, daylight-saving change days included. Expected
instants are worked out by hand in the tables (e.g. 02:30 Europe/Berlin in winter
is 01:30 UTC).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pymon.config.windows import WEEKDAYS, MaintenanceWindow, local_to_epoch, one_off
from pymon.engine.maintenance import ActiveWindow, active_at, matches, next_change, windows_for

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    """Epoch seconds of a UTC date-time."""
    return datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp()


def window(**keys: Any) -> MaintenanceWindow:
    """A window from config keys, as YAML would give them; covers every service by default."""
    return MaintenanceWindow.model_validate({"services": ["*"], **keys})


def error_of(keys: Mapping[str, Any]) -> str:
    """The validation message for a window written with ``keys``."""
    with pytest.raises(ValidationError) as info:
        MaintenanceWindow.model_validate(dict(keys))
    return str(info.value)


def assert_opens_and_closes(w: MaintenanceWindow, opens: float, closes: float) -> None:
    """``w`` is off just before ``opens``, on from ``opens`` until just before ``closes``."""
    assert active_at(w, opens - 1) is None
    assert active_at(w, opens) == (opens, closes)
    assert active_at(w, closes - 1) == (opens, closes)
    assert active_at(w, closes) is None


# -- matching -------------------------------------------------------------------------

MATCHING = [
    # (services, tags of the window, service name, service tags, expected)
    (["web-*"], [], "web-1", [], True),
    (["web-*"], [], "db-1", [], False),
    (["web-?"], [], "web-10", [], False),
    (["[ab]-x"], [], "b-x", [], True),
    (["*"], [], "anything", [], True),
    (["web-1"], [], "web-1", [], True),
    (["web-*"], [], "Web-1", [], False),
    ([], ["eu", "prod"], "svc", ["prod"], True),
    ([], ["eu"], "svc", ["us"], False),
    ([], ["eu"], "svc", [], False),
    ([], ["EU"], "svc", ["eu"], False),
    (["db-*"], ["eu"], "web-1", ["eu"], True),
    (["db-*"], ["eu"], "db-1", [], True),
    (["db-*"], ["eu"], "web-1", ["us"], False),
]


@pytest.mark.parametrize(("services", "wtags", "name", "tags", "expected"), MATCHING)
def test_matching(
    services: list[str], wtags: list[str], name: str, tags: list[str], expected: bool
) -> None:
    w = MaintenanceWindow.model_validate(
        {"services": services, "tags": wtags, "start": "2026-01-01", "end": "2026-01-02"}
    )
    assert matches(w, name, tags) is expected


# -- one-off --------------------------------------------------------------------------

ONE_OFF = window(start="2026-05-01T02:00:00Z", end="2026-05-01T04:00:00Z")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2026, 5, 1, 1, 59), None),
        (utc(2026, 5, 1, 2), (utc(2026, 5, 1, 2), utc(2026, 5, 1, 4))),
        (utc(2026, 5, 1, 4) - 0.001, (utc(2026, 5, 1, 2), utc(2026, 5, 1, 4))),
        (utc(2026, 5, 1, 4), None),
        (utc(2026, 6, 1), None),
    ],
    ids=["before", "at-start", "just-before-end", "at-end", "after"],
)
def test_one_off_before_during_after(now: float, expected: tuple[float, float] | None) -> None:
    assert active_at(ONE_OFF, now) == expected


def test_one_off_naive_times_are_read_in_its_timezone() -> None:
    w = window(timezone="Asia/Kolkata", start="2026-05-01T02:00", end="2026-05-01T03:00")
    span = (utc(2026, 4, 30, 20, 30), utc(2026, 4, 30, 21, 30))  # 02:00 IST is 20:30Z
    assert active_at(w, span[0]) == span


def test_one_off_offset_in_the_text_wins_over_timezone() -> None:
    w = window(timezone="America/New_York", start="2026-05-01T02:00+02:00", end="2026-05-01T03:00Z")
    assert active_at(w, utc(2026, 5, 1, 0)) == (utc(2026, 5, 1, 0), utc(2026, 5, 1, 3))


def test_one_off_dates_cover_whole_days_end_inclusive() -> None:
    w = window(timezone="Europe/Berlin", start="2026-05-01", end="2026-05-03")
    assert active_at(w, utc(2026, 5, 2)) == (utc(2026, 4, 30, 22), utc(2026, 5, 3, 22))


def test_one_off_accepts_yaml_date_objects() -> None:
    w = window(start=date(2026, 5, 1), end=date(2026, 5, 1))
    assert active_at(w, utc(2026, 5, 1, 12)) == (utc(2026, 5, 1), utc(2026, 5, 2))


def test_one_off_builder_makes_an_ad_hoc_window() -> None:
    start = datetime(2026, 5, 1, 2, tzinfo=UTC)
    created = datetime(2026, 4, 30, 9, tzinfo=UTC)
    w = one_off(
        services=["web-*"],
        start=start,
        end=start + timedelta(hours=1),
        comment="deploy",
        author="alice",
        id="mw-1",
        created=created,
    )
    assert (w.kind, w.comment, w.author, w.id, w.created) == (
        "one-off",
        "deploy",
        "alice",
        "mw-1",
        created,
    )
    assert active_at(w, start.timestamp()) == (start.timestamp(), start.timestamp() + 3600)


def test_one_off_builder_validates_like_config() -> None:
    start = datetime(2026, 5, 1, 2, tzinfo=UTC)
    with pytest.raises(ValidationError, match="must be after start"):
        one_off(services=["*"], start=start, end=start)


# -- cron -----------------------------------------------------------------------------

SUNDAY_2AM = window(cron="0 2 * * sun", duration="2h")  # 2026-05-03 is a Sunday


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2026, 5, 2, 2), None),
        (utc(2026, 5, 3, 1, 59), None),
        (utc(2026, 5, 3, 2), (utc(2026, 5, 3, 2), utc(2026, 5, 3, 4))),
        (utc(2026, 5, 3, 3, 59), (utc(2026, 5, 3, 2), utc(2026, 5, 3, 4))),
        (utc(2026, 5, 3, 4), None),
        (utc(2026, 5, 4, 2), None),
        (utc(2026, 5, 10, 3), (utc(2026, 5, 10, 2), utc(2026, 5, 10, 4))),
    ],
    ids=["saturday", "before", "at-fire", "last-minute", "at-end", "monday", "next-sunday"],
)
def test_cron_window(now: float, expected: tuple[float, float] | None) -> None:
    assert active_at(SUNDAY_2AM, now) == expected


def test_cron_overlapping_occurrences_give_the_latest() -> None:
    w = window(cron="0 * * * *", duration="90m")
    assert active_at(w, utc(2026, 5, 1, 3, 15)) == (utc(2026, 5, 1, 3), utc(2026, 5, 1, 4, 30))


def test_cron_alias_is_accepted() -> None:
    w = window(cron="@Daily", duration="30m")
    assert active_at(w, utc(2026, 5, 1, 0, 10)) == (utc(2026, 5, 1), utc(2026, 5, 1, 0, 30))


def test_cron_day_of_month_and_day_of_week_either_match_as_in_cron() -> None:
    w = window(cron="0 0 1 * mon", duration="1h")  # 2026-05-04 is a Monday, not the 1st
    assert active_at(w, utc(2026, 5, 4, 0, 30)) == (utc(2026, 5, 4), utc(2026, 5, 4, 1))


# -- weekly ---------------------------------------------------------------------------

# 2026-05-02 is a Saturday.
SATURDAY_NIGHT = window(days=["sat"], **{"from": "22:00", "to": "02:00"})


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2026, 5, 2, 21, 59), None),
        (utc(2026, 5, 2, 22), (utc(2026, 5, 2, 22), utc(2026, 5, 3, 2))),
        (utc(2026, 5, 3, 1, 59), (utc(2026, 5, 2, 22), utc(2026, 5, 3, 2))),
        (utc(2026, 5, 3, 2), None),
        (utc(2026, 5, 3, 23), None),
        (utc(2026, 5, 1, 23), None),
    ],
    ids=["before", "at-from", "after-midnight", "at-to", "sunday-night", "friday-night"],
)
def test_weekly_window_crossing_midnight(now: float, expected: tuple[float, float] | None) -> None:
    assert active_at(SATURDAY_NIGHT, now) == expected


def test_weekly_window_within_a_day() -> None:
    w = window(days=["wed"], **{"from": "09:00", "to": "17:30"})  # 2026-05-06 is a Wednesday
    assert_opens_and_closes(w, utc(2026, 5, 6, 9), utc(2026, 5, 6, 17, 30))


def test_weekly_days_alone_cover_whole_days() -> None:
    w = window(days=["wed"])
    assert_opens_and_closes(w, utc(2026, 5, 6), utc(2026, 5, 7))


def test_weekly_equal_from_and_to_last_a_whole_day() -> None:
    w = window(days=["wed"], **{"from": "12:00", "to": "12:00"})
    assert_opens_and_closes(w, utc(2026, 5, 6, 12), utc(2026, 5, 7, 12))


def test_weekly_day_names_are_case_insensitive_and_may_be_full() -> None:
    w = window(days=["Sunday", "SAT", "sat"])
    assert w.days == ("sat", "sun")


# -- time zones (no daylight-saving change involved) -----------------------------------

BERLIN_2AM = [
    window(timezone="Europe/Berlin", cron="0 2 * * *", duration="1h"),
    window(timezone="Europe/Berlin", days=list(WEEKDAYS), **{"from": "02:00", "to": "03:00"}),
]


@pytest.mark.parametrize("w", BERLIN_2AM, ids=["cron", "weekly"])
def test_2am_berlin_is_1am_utc_in_winter(w: MaintenanceWindow) -> None:
    assert_opens_and_closes(w, utc(2026, 1, 15, 1), utc(2026, 1, 15, 2))


@pytest.mark.parametrize("w", BERLIN_2AM, ids=["cron", "weekly"])
def test_2am_berlin_is_midnight_utc_in_summer(w: MaintenanceWindow) -> None:
    assert_opens_and_closes(w, utc(2026, 7, 15, 0), utc(2026, 7, 15, 1))


@pytest.mark.parametrize(
    ("start", "opens"),
    [("2026-01-15T02:00", utc(2026, 1, 15, 1)), ("2026-07-15T02:00", utc(2026, 7, 15, 0))],
    ids=["winter", "summer"],
)
def test_one_off_2am_berlin_by_season(start: str, opens: float) -> None:
    w = window(timezone="Europe/Berlin", start=start, end=start.replace("02:00", "03:00"))
    assert_opens_and_closes(w, opens, opens + 3600)


# -- daylight-saving changes ---------------------------------------------------------
# Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST (at 01:00Z);
#                2026-10-25 03:00 CEST -> 02:00 CET (at 01:00Z), 02:00-03:00 twice.
# America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT (at 07:00Z);
#                   2026-11-01 02:00 EDT -> 01:00 EST (at 06:00Z), 01:00-02:00 twice.
# All four are Sundays. Weekly windows are sun+mon, to see the change day and the next.

_SUN_MON = {"days": ["sun", "mon"], "from": "01:30", "to": "04:00"}

DST_CASES = [
    # --- Berlin, spring forward
    ("berlin-spring-weekly-sun", "Europe/Berlin", _SUN_MON,
     utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 2)),  # 01:30 CET .. 04:00 CEST: 1h30 long
    ("berlin-spring-weekly-mon", "Europe/Berlin", _SUN_MON,
     utc(2026, 3, 29, 23, 30), utc(2026, 3, 30, 2)),
    ("berlin-spring-weekly-from-skipped", "Europe/Berlin",
     {"days": ["sun"], "from": "02:30", "to": "03:30"},
     utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 30)),  # opens at the jump (03:00 CEST)
    ("berlin-spring-cron-sun", "Europe/Berlin", {"cron": "30 2 * * *", "duration": "1h"},
     utc(2026, 3, 29, 1), utc(2026, 3, 29, 2)),  # 02:30 is skipped: opens at the jump
    ("berlin-spring-cron-mon", "Europe/Berlin", {"cron": "30 2 * * *", "duration": "1h"},
     utc(2026, 3, 30, 0, 30), utc(2026, 3, 30, 1, 30)),
    ("berlin-spring-cron-brief-example", "Europe/Berlin",
     {"cron": "0 2 * * sun", "duration": "2h"},
     utc(2026, 3, 29, 1), utc(2026, 3, 29, 3)),
    ("berlin-spring-one-off-sun", "Europe/Berlin",
     {"start": "2026-03-29T01:00", "end": "2026-03-29T04:00"},
     utc(2026, 3, 29, 0), utc(2026, 3, 29, 2)),
    ("berlin-spring-one-off-mon", "Europe/Berlin",
     {"start": "2026-03-30T01:00", "end": "2026-03-30T04:00"},
     utc(2026, 3, 29, 23), utc(2026, 3, 30, 2)),
    # --- Berlin, fall back
    ("berlin-fall-weekly-sun", "Europe/Berlin", _SUN_MON,
     utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 3)),  # 01:30 CEST .. 04:00 CET: 3h30 long
    ("berlin-fall-weekly-mon", "Europe/Berlin", _SUN_MON,
     utc(2026, 10, 26, 0, 30), utc(2026, 10, 26, 3)),
    ("berlin-fall-weekly-from-repeated", "Europe/Berlin",
     {"days": ["sun"], "from": "02:30", "to": "05:00"},
     utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 4)),  # the first 02:30 (CEST)
    ("berlin-fall-cron-sun", "Europe/Berlin", {"cron": "30 2 * * *", "duration": "1h"},
     utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)),  # the first 02:30, once
    ("berlin-fall-cron-mon", "Europe/Berlin", {"cron": "30 2 * * *", "duration": "1h"},
     utc(2026, 10, 26, 1, 30), utc(2026, 10, 26, 2, 30)),
    ("berlin-fall-one-off-sun", "Europe/Berlin",
     {"start": "2026-10-25T01:00", "end": "2026-10-25T04:00"},
     utc(2026, 10, 24, 23), utc(2026, 10, 25, 3)),
    ("berlin-fall-one-off-mon", "Europe/Berlin",
     {"start": "2026-10-26T01:00", "end": "2026-10-26T04:00"},
     utc(2026, 10, 26, 0), utc(2026, 10, 26, 3)),
    # --- New York, spring forward
    ("ny-spring-weekly-sun", "America/New_York", _SUN_MON,
     utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 8)),  # 01:30 EST .. 04:00 EDT
    ("ny-spring-weekly-mon", "America/New_York", _SUN_MON,
     utc(2026, 3, 9, 5, 30), utc(2026, 3, 9, 8)),
    ("ny-spring-cron-sun", "America/New_York", {"cron": "30 2 * * *", "duration": "1h"},
     utc(2026, 3, 8, 7), utc(2026, 3, 8, 8)),  # 02:30 is skipped: opens at the jump
    ("ny-spring-cron-mon", "America/New_York", {"cron": "30 2 * * *", "duration": "1h"},
     utc(2026, 3, 9, 6, 30), utc(2026, 3, 9, 7, 30)),
    ("ny-spring-one-off-sun", "America/New_York",
     {"start": "2026-03-08T01:00", "end": "2026-03-08T04:00"},
     utc(2026, 3, 8, 6), utc(2026, 3, 8, 8)),
    ("ny-spring-one-off-mon", "America/New_York",
     {"start": "2026-03-09T01:00", "end": "2026-03-09T04:00"},
     utc(2026, 3, 9, 5), utc(2026, 3, 9, 8)),
    # --- New York, fall back
    ("ny-fall-weekly-sun", "America/New_York",
     {"days": ["sun", "mon"], "from": "00:30", "to": "03:00"},
     utc(2026, 11, 1, 4, 30), utc(2026, 11, 1, 8)),  # 00:30 EDT .. 03:00 EST: 3h30 long
    ("ny-fall-weekly-mon", "America/New_York",
     {"days": ["sun", "mon"], "from": "00:30", "to": "03:00"},
     utc(2026, 11, 2, 5, 30), utc(2026, 11, 2, 8)),
    ("ny-fall-cron-sun", "America/New_York", {"cron": "30 1 * * *", "duration": "1h"},
     utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)),  # the first 01:30 (EDT), once
    ("ny-fall-cron-mon", "America/New_York", {"cron": "30 1 * * *", "duration": "1h"},
     utc(2026, 11, 2, 6, 30), utc(2026, 11, 2, 7, 30)),
    ("ny-fall-one-off-sun", "America/New_York",
     {"start": "2026-11-01T00:30", "end": "2026-11-01T03:00"},
     utc(2026, 11, 1, 4, 30), utc(2026, 11, 1, 8)),
    ("ny-fall-one-off-mon", "America/New_York",
     {"start": "2026-11-02T00:30", "end": "2026-11-02T03:00"},
     utc(2026, 11, 2, 5, 30), utc(2026, 11, 2, 8)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("zone", "keys", "opens", "closes"),
    [case[1:] for case in DST_CASES],
    ids=[case[0] for case in DST_CASES],
)
def test_daylight_saving_change(
    zone: str, keys: dict[str, Any], opens: float, closes: float
) -> None:
    assert_opens_and_closes(window(timezone=zone, **keys), opens, closes)


def test_cron_in_a_repeated_hour_does_not_fire_on_the_second_pass() -> None:
    w = window(timezone="America/New_York", cron="30 1 * * *", duration="10m")
    assert active_at(w, utc(2026, 11, 1, 6, 35)) is None  # 01:35 EST, the second 01:35


def test_cron_in_a_repeated_hour_finds_the_fire_that_covers_the_second_pass() -> None:
    # At 01:45 EST (the second 01:45) the 00:00 EDT fire still covers; the 02:00 fire,
    # later on the clock but still to come, must not be taken for it.
    w = window(timezone="America/New_York", cron="0 0,2 * * *", duration="3h")
    assert active_at(w, utc(2026, 11, 1, 6, 45)) == (utc(2026, 11, 1, 4), utc(2026, 11, 1, 7))


def test_weekly_window_wholly_in_a_skipped_hour_never_opens() -> None:
    w = window(timezone="Europe/Berlin", days=["sun"], **{"from": "02:10", "to": "02:40"})
    assert next_change([w], "svc", [], utc(2026, 3, 28, 12)) == utc(2026, 4, 5, 0, 10)


def test_weekly_window_of_the_next_day_covers_a_clock_turned_back_past_midnight() -> None:
    # Sitka in 1867 (Alaska changed hands) turned its clocks back from Oct 19 15:30
    # to Oct 18 15:30. At 05:00Z the clock shows Oct 18 again, yet the Oct 19 window
    # opened on the first pass and is still open.
    sitka = ZoneInfo("America/Sitka")
    saturday = WEEKDAYS[date(1867, 10, 19).weekday()]
    w = window(timezone="America/Sitka", days=[saturday], **{"from": "00:00", "to": "20:00"})
    opens = local_to_epoch(datetime(1867, 10, 19), sitka)
    closes = local_to_epoch(datetime(1867, 10, 19, 20), sitka)
    assert active_at(w, utc(1867, 10, 19, 5)) == (opens, closes)


def test_local_to_epoch_maps_a_skipped_time_to_the_jump() -> None:
    assert local_to_epoch(datetime(2026, 3, 29, 2, 30), BERLIN) == utc(2026, 3, 29, 1)


def test_local_to_epoch_maps_a_repeated_time_to_its_first_occurrence() -> None:
    assert local_to_epoch(datetime(2026, 11, 1, 1, 30), NEW_YORK) == utc(2026, 11, 1, 5, 30)


def test_one_off_start_in_a_skipped_hour_is_stored_as_the_jump() -> None:
    w = window(timezone="Europe/Berlin", start="2026-03-29T02:30", end="2026-03-29T05:00")
    assert w.start == datetime(2026, 3, 29, 1, tzinfo=UTC)


# -- windows_for and next_change -----------------------------------------------------

WEB_NIGHTLY = window(name="nightly", services=["web-*"], cron="0 3 * * *", duration="1h")
DB_ONE_OFF = window(
    name="db-move", services=[], tags=["db"], start="2026-05-01T03:30Z", end="2026-05-01T05:00Z"
)


def test_windows_for_lists_the_covering_windows_with_their_spans() -> None:
    found = windows_for([WEB_NIGHTLY, DB_ONE_OFF], "web-1", ["db"], utc(2026, 5, 1, 3, 45))
    assert found == [
        ActiveWindow(WEB_NIGHTLY, utc(2026, 5, 1, 3), utc(2026, 5, 1, 4)),
        ActiveWindow(DB_ONE_OFF, utc(2026, 5, 1, 3, 30), utc(2026, 5, 1, 5)),
    ]


def test_windows_for_skips_windows_that_do_not_match() -> None:
    assert windows_for([WEB_NIGHTLY, DB_ONE_OFF], "mail", ["db"], utc(2026, 5, 1, 3, 45)) == [
        ActiveWindow(DB_ONE_OFF, utc(2026, 5, 1, 3, 30), utc(2026, 5, 1, 5)),
    ]


def test_windows_for_is_empty_outside_windows() -> None:
    assert windows_for([WEB_NIGHTLY, DB_ONE_OFF], "web-1", ["db"], utc(2026, 5, 1, 12)) == []


def test_next_change_outside_is_the_next_start() -> None:
    assert next_change([WEB_NIGHTLY], "web-1", [], utc(2026, 5, 1, 12)) == utc(2026, 5, 2, 3)


def test_next_change_inside_is_the_end() -> None:
    assert next_change([WEB_NIGHTLY], "web-1", [], utc(2026, 5, 1, 3, 10)) == utc(2026, 5, 1, 4)


def test_next_change_follows_overlapping_windows_to_the_last_end() -> None:
    now = utc(2026, 5, 1, 3, 10)
    assert next_change([WEB_NIGHTLY, DB_ONE_OFF], "web-1", ["db"], now) == utc(2026, 5, 1, 5)


def test_next_change_joins_adjoining_occurrences() -> None:
    weekend = window(days=["sat", "sun"])
    assert next_change([weekend], "svc", [], utc(2026, 5, 2, 12)) == utc(2026, 5, 4)


def test_next_change_ignores_windows_of_other_services() -> None:
    assert next_change([WEB_NIGHTLY], "mail", [], utc(2026, 5, 1, 12)) is None


def test_next_change_is_none_beyond_the_horizon() -> None:
    w = window(start="2026-06-01T00:00Z", end="2026-06-02T00:00Z")
    assert next_change([w], "svc", [], utc(2026, 5, 1)) is None


def test_next_change_is_none_for_a_past_one_off() -> None:
    assert next_change([DB_ONE_OFF], "x", ["db"], utc(2026, 5, 2)) is None


def test_next_change_across_a_daylight_saving_change() -> None:
    w = window(timezone="Europe/Berlin", **_SUN_MON)
    assert next_change([w], "svc", [], utc(2026, 10, 25, 0)) == utc(2026, 10, 25, 3)


# -- config validation ------------------------------------------------------------------

_CRON = {"services": ["*"], "duration": "1h"}
_ONE = {"services": ["*"], "start": "2026-05-01T02:00", "end": "2026-05-01T03:00"}

INVALID = [
    ("cron-out-of-range", {**_CRON, "cron": "61 * * * *"}, "'61 * * * *' is not a cron expression"),
    ("cron-garbage", {**_CRON, "cron": "every sunday"}, "has 2 fields; a cron expression has 5"),
    ("cron-six-fields", {**_CRON, "cron": "0 0 2 * * sun"}, "has 6 fields"),
    ("cron-never-fires", {**_CRON, "cron": "0 0 30 2 *"}, "never fires"),
    ("cron-hashed", {**_CRON, "cron": "H 2 * * *"}, "hashed (H) and random (R)"),
    ("cron-reboot", {**_CRON, "cron": "@reboot"}, "the @ forms are @yearly"),
    ("cron-no-duration", {"services": ["*"], "cron": "0 2 * * *"}, "needs a duration"),
    ("duration-zero", {**_CRON, "cron": "0 2 * * *", "duration": "0s"}, "greater than 0"),
    ("duration-no-cron", {**_CRON}, "duration goes with cron"),
    ("timezone-unknown", {**_ONE, "timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
    ("timezone-typo", {**_ONE, "timezone": "Europe/Berln"}, "did you mean Europe/Berlin?"),
    ("timezone-case", {**_ONE, "timezone": "europe/berlin"}, "did you mean Europe/Berlin?"),
    ("timezone-directory", {**_ONE, "timezone": "Europe"}, "unknown time zone 'Europe'"),
    ("timezone-path", {**_ONE, "timezone": "../etc/passwd"}, "unknown time zone"),
    ("end-before-start", {**_ONE, "end": "2026-05-01T01:00"}, "must be after start"),
    ("end-equals-start", {**_ONE, "end": "2026-05-01T02:00"}, "must be after start"),
    ("start-not-a-date", {**_ONE, "start": "tomorrow"}, "'tomorrow' is not an ISO 8601 date"),
    ("one-off-no-end", {"services": ["*"], "start": "2026-05-01"}, "needs both start and end"),
    ("mixed-schedules", {**_ONE, "cron": "0 2 * * *"}, "schedules (start, end, cron)"),
    ("mixed-weekly-cron", {**_CRON, "days": ["sun"]}, "schedules (duration, days)"),
    ("no-schedule", {"services": ["*"]}, "needs a schedule: start and end (one-off), cron and"),
    ("unknown-day", {"services": ["*"], "days": ["funday"]}, "unknown day 'funday': use mon, tue"),
    ("no-days", {"services": ["*"], "days": []}, "days must name at least one day"),
    ("from-no-days", {"services": ["*"], "from": "02:00"}, "from and to go with days"),
    ("bad-time", {"services": ["*"], "days": ["sun"], "to": "25:00"}, "'25:00' is not a time"),
    ("time-24", {"services": ["*"], "days": ["sun"], "to": "24:00"}, "write midnight as 00:00"),
    ("time-am-pm", {"services": ["*"], "days": ["sun"], "from": "7pm"}, "not a time of day as"),
    ("no-services-or-tags", {"start": "2026-05-01", "end": "2026-05-02"}, "needs services"),
    ("empty-pattern", {**_ONE, "services": [""]}, "at least 1 character"),
    ("unknown-key", {**_ONE, "until": "2026-05-02"}, "Extra inputs are not permitted"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("keys", "message"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_window(keys: dict[str, Any], message: str) -> None:
    assert message in error_of(keys)


def test_error_for_from_names_the_key_as_written() -> None:
    with pytest.raises(ValidationError) as info:
        MaintenanceWindow.model_validate({"services": ["*"], "days": ["sun"], "from": "x"})
    assert info.value.errors()[0]["loc"] == ("from",)


def test_valid_window_serialises_with_config_keys() -> None:
    w = window(days=["sun"], **{"from": "7:05", "to": "09:00"})
    dumped = w.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    assert dumped == {"services": ["*"], "days": ["sun"], "from": "07:05", "to": "09:00"}


@pytest.mark.parametrize(
    ("keys", "kind"),
    [
        (_ONE, "one-off"),
        ({**_CRON, "cron": "0 2 * * *"}, "cron"),
        ({"services": ["*"], "days": ["sun"]}, "weekly"),
    ],
)
def test_kind_names_the_schedule(keys: dict[str, Any], kind: str) -> None:
    assert MaintenanceWindow.model_validate(keys).kind == kind


# -- properties -------------------------------------------------------------------------

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # a 30-minute daylight-saving shift
    "America/Santiago",  # southern hemisphere; changes at midnight
    "Asia/Kolkata",
]
_TRANSITIONS = [
    utc(2026, 3, 29, 1),
    utc(2026, 10, 25, 1),
    utc(2026, 3, 8, 7),
    utc(2026, 11, 1, 6),
    utc(2026, 4, 4, 15),  # Lord Howe falls back (02:00 -> 01:30 local)
    utc(2026, 4, 5, 3),  # Santiago falls back (midnight -> 23:00)
    utc(2026, 9, 6, 4),  # Santiago springs forward (midnight -> 01:00)
]
instants = st.one_of(
    st.integers(int(utc(2025, 1, 1)), int(utc(2028, 1, 1))).map(float),
    st.builds(
        lambda t, d: t + d, st.sampled_from(_TRANSITIONS), st.integers(-3 * 86400, 3 * 86400)
    ).map(float),
)
clock_times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
weekly_windows = st.builds(
    lambda zone, days, opens, closes: window(
        timezone=zone,
        days=days,
        **{"from": opens.strftime("%H:%M"), "to": closes.strftime("%H:%M")},
    ),
    st.sampled_from(ZONES),
    st.lists(st.sampled_from(WEEKDAYS), min_size=1, unique=True),
    clock_times,
    clock_times,
)
cron_windows = st.builds(
    lambda zone, expr, minutes: window(timezone=zone, cron=expr, duration=f"{minutes}m"),
    st.sampled_from(ZONES),
    st.sampled_from(
        ["0 2 * * sun", "30 1 * * *", "*/20 2 * * *", "0 0 1 * *", "15 23 * * 1-5", "0 */6 * * *"]
    ),
    st.integers(1, 300),
)


def _valid(keys: dict[str, Any]) -> bool:
    # A naive start in a zone's spring-forward gap can land after a naive end an hour
    # later (02:01 does not exist, 03:00 does): the window is refused, as it should be.
    try:
        window(**keys)
    except ValidationError:
        return False
    return True


one_off_windows = (
    st.builds(
        lambda zone, start, minutes: {
            "timezone": zone,
            "start": datetime.fromtimestamp(start, UTC).replace(tzinfo=None).isoformat(),
            "end": (datetime.fromtimestamp(start, UTC) + timedelta(minutes=minutes))
            .replace(tzinfo=None)
            .isoformat(),
        },
        st.sampled_from(ZONES),
        instants,
        st.integers(1, 3 * 1440),
    )
    .filter(_valid)
    .map(lambda keys: window(**keys))
)
any_window = st.one_of(weekly_windows, cron_windows, one_off_windows)


def _offset(zone: ZoneInfo, t: float) -> timedelta:
    offset = datetime.fromtimestamp(t, zone).utcoffset()
    assert offset is not None
    return offset


def _span_near(w: MaintenanceWindow, now: float) -> tuple[float, float] | None:
    """The occurrence covering ``now``, else the next one to open (so properties see spans)."""
    span = active_at(w, now)
    if span is None and (opens := next_change([w], "svc", [], now, 40 * 86400)) is not None:
        span = active_at(w, opens)
    return span


def _skipped(zone: ZoneInfo, wall: datetime) -> bool:
    """Whether the clock in ``zone`` never shows ``wall`` (it jumps over it)."""
    first, second = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    return (second.utcoffset() or timedelta()) > (first.utcoffset() or timedelta())


@settings(deadline=None)
@given(any_window, instants)
def test_property_a_span_contains_now(w: MaintenanceWindow, now: float) -> None:
    span = active_at(w, now)
    assert span is None or span[0] <= now < span[1]


@settings(deadline=None)
@given(one_off_windows, instants)
def test_property_one_off_span_is_its_start_and_end(w: MaintenanceWindow, now: float) -> None:
    assert w.start is not None and w.end is not None
    span = active_at(w, now)
    assert span in (None, (w.start.timestamp(), w.end.timestamp()))


@settings(deadline=None)
@given(weekly_windows, instants)
def test_property_weekly_span_lasts_the_wall_clock_duration_less_the_clock_change(
    w: MaintenanceWindow, now: float
) -> None:
    # Both ends shown on the clock: the span is from..to on the clock, minus however
    # far the clock moved in between (an hour shorter in spring, longer in autumn).
    span = _span_near(w, now)
    assert span is not None and w.from_ is not None and w.to is not None
    start, end = span
    day = datetime.fromtimestamp(start, w.zone).date()
    end_day = day + timedelta(days=1) if w.to <= w.from_ else day
    if _skipped(w.zone, datetime.combine(day, w.from_)) or _skipped(
        w.zone, datetime.combine(end_day, w.to)
    ):
        return  # covered by the next property
    wall = datetime.combine(end_day, w.to) - datetime.combine(day, w.from_)
    moved = _offset(w.zone, end) - _offset(w.zone, start)
    assert end - start == (wall - moved).total_seconds()
    assert WEEKDAYS[day.weekday()] in (w.days or ())


@settings(deadline=None)
@given(weekly_windows, instants)
def test_property_weekly_span_starts_at_from_or_at_a_clock_jump(
    w: MaintenanceWindow, now: float
) -> None:
    span = _span_near(w, now)
    assert span is not None
    start = span[0]
    shown = datetime.fromtimestamp(start, w.zone).time()
    jumped = _offset(w.zone, start - 1) != _offset(w.zone, start)
    assert shown == w.from_ or jumped


@settings(deadline=None)
@given(cron_windows, instants)
def test_property_cron_span_starts_at_a_fire_or_at_a_clock_jump(
    w: MaintenanceWindow, now: float
) -> None:
    span = _span_near(w, now)
    assert span is not None and w.cron is not None and w.duration is not None
    start, end = span
    wall = datetime.fromtimestamp(start, w.zone).replace(tzinfo=None)
    jumped = _offset(w.zone, start - 1) != _offset(w.zone, start)
    assert croniter.match(w.cron, wall) or jumped
    assert end - start == w.duration


@settings(deadline=None, max_examples=50)
@given(st.lists(any_window, min_size=1, max_size=3), instants)
def test_property_next_change_flips_the_flag(windows: list[MaintenanceWindow], now: float) -> None:
    def flag(t: float) -> bool:
        return bool(windows_for(windows, "svc", [], t))

    change = next_change(windows, "svc", [], now)
    if change is None:
        return
    assert change > now
    assert flag(change) != flag(now)
    assert flag((now + change) / 2) == flag(now)
    assert flag(max(now, change - 0.001)) == flag(now)


@given(
    st.sampled_from([BERLIN, NEW_YORK, ZoneInfo("Australia/Lord_Howe")]),
    st.datetimes(datetime(2025, 1, 1), datetime(2028, 1, 1)),
    st.timedeltas(timedelta(0), timedelta(hours=6)),
)
def test_property_local_to_epoch_keeps_order(
    zone: ZoneInfo, wall: datetime, delta: timedelta
) -> None:
    assert local_to_epoch(wall, zone) <= local_to_epoch(wall + delta, zone)


@given(
    st.sampled_from([BERLIN, NEW_YORK, ZoneInfo("Australia/Lord_Howe")]),
    st.integers(int(utc(2025, 1, 1)), int(utc(2028, 1, 1))),
)
def test_property_local_to_epoch_inverts_the_clock_outside_repeats(zone: ZoneInfo, t: int) -> None:
    local = datetime.fromtimestamp(t, zone)
    expected = local.replace(fold=0).timestamp()  # the first pass of a repeated time
    assert local_to_epoch(local.replace(tzinfo=None), zone) == expected


def test_a_null_cron_is_the_same_as_none() -> None:
    with pytest.raises(ValidationError, match="duration goes with cron"):
        MaintenanceWindow.model_validate({"services": ["a"], "cron": None, "duration": "1h"})
