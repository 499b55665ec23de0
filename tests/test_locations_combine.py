"""The combining of locations' results (pymon.locations.combine), over every mix of
statuses, ages and quorums: a property test and the cases an operator reads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymon.locations import Combined, LocationResult, at, combine, quorum_of, split
from pymon.model import Status

NOW = 1_000_000.0
MAX_AGE = 10.0
LISTED = ("a", "b", "c", "d", "e")

statuses = st.sampled_from([None, *Status])
ages = st.sampled_from([None, 0.0, MAX_AGE, MAX_AGE + 0.5, 3600.0])


@st.composite
def situations(draw: st.DrawFn) -> tuple[list[str], dict[str, LocationResult], int, set[str], bool]:
    listed = LISTED[: draw(st.integers(1, len(LISTED)))]
    results = {}
    for loc in listed:
        if draw(st.booleans()):
            age = draw(ages)
            results[loc] = LocationResult(
                loc, draw(statuses), "said", None if age is None else NOW - age
            )
    quorum = draw(st.integers(1, len(listed)))
    announced = {loc for loc in listed if draw(st.integers(0, 9)) > 0}
    return list(listed), results, quorum, announced, draw(st.booleans())


def decide(
    listed: list[str],
    results: dict[str, LocationResult],
    quorum: int,
    announced: set[str],
    notify_partial: bool = False,
) -> Combined:
    return combine(
        listed,
        results,
        quorum=quorum,
        now=NOW,
        max_age=MAX_AGE,
        announced=announced,
        notify_partial=notify_partial,
    )


@given(situations())
def test_never_ok_while_a_quorum_confirms_a_problem(
    case: tuple[list[str], dict[str, LocationResult], int, set[str], bool],
) -> None:
    listed, results, quorum, announced, notify_partial = case
    decided = decide(listed, results, quorum, announced, notify_partial)
    counted = [
        r
        for loc, r in results.items()
        if loc in announced
        and r.status is not None
        and r.last_check is not None
        and NOW - r.last_check <= MAX_AGE
    ]
    problems = [r for r in counted if r.status is not None and r.status.is_problem]
    assert set(decided.present) == {r.location for r in counted}
    assert set(decided.present) | set(decided.absent) == set(listed)
    if len(counted) < quorum:
        assert decided.status is Status.UNKNOWN
        assert not decided.partial
    elif len(problems) >= quorum:
        assert decided.status is not Status.OK
        assert decided.status.is_problem
        # The status the quorum agrees on: at least quorum see it or worse.
        worse = [r for r in problems if r.status and r.status.severity >= decided.status.severity]
        assert len(worse) >= quorum
        assert not decided.partial
    else:
        assert decided.partial == bool(problems)
        assert decided.partial_locations == tuple(sorted(r.location for r in problems))
        if problems and notify_partial:
            assert decided.status is Status.worst(*(r.status for r in problems if r.status))
        else:
            assert decided.status is Status.OK


def result(loc: str, status: Status, message: str = "", age: float = 1.0) -> LocationResult:
    return LocationResult(loc, status, message, NOW - age)


def test_the_message_names_who_saw_what_worst_first() -> None:
    results = {
        "a": result("a", Status.FAILED, "connection refused"),
        "b": result("b", Status.ERROR, "HTTP 500"),
        "c": result("c", Status.OK),
    }
    decided = decide(["a", "b", "c"], results, 2, {"a", "b", "c"})
    assert decided.status is Status.ERROR  # two agree on error or worse; one on failed
    assert decided.message == "down from a, b; ok from c (a: connection refused; b: HTTP 500)"


def test_too_few_reporting_is_unknown_with_each_reason() -> None:
    results = {"a": result("a", Status.OK), "b": result("b", Status.OK, age=60)}
    decided = decide(["a", "b", "c"], results, 2, {"a", "b"})
    assert decided.status is Status.UNKNOWN
    assert decided.message == (
        "1 of 3 locations reporting, quorum 2 "
        "(b: last result 60s old; c: no node has ever announced this location)"
    )


def test_a_partial_problem_notifies_only_when_asked() -> None:
    results = {"a": result("a", Status.WARN, "slow"), "b": result("b", Status.OK)}
    quiet = decide(["a", "b"], results, 2, {"a", "b"})
    assert (quiet.status, quiet.partial, quiet.partial_locations) == (Status.OK, True, ("a",))
    assert quiet.message == "partial: warn from a; ok from b (a: slow)"
    loud = decide(["a", "b"], results, 2, {"a", "b"}, notify_partial=True)
    assert (loud.status, loud.partial) == (Status.WARN, True)


@pytest.mark.parametrize(
    ("listed", "quorum", "expected"),
    [(3, None, 2), (4, None, 3), (1, None, 1), (5, "all", 5), (5, 1, 1), (2, 2, 2)],
)
def test_quorum_defaults_to_a_majority(
    listed: int, quorum: int | str | None, expected: int
) -> None:
    assert quorum_of(listed, quorum) == expected  # type: ignore[arg-type]


def test_location_check_names_round_trip() -> None:
    assert at("web", "eu-west") == "web@eu-west"
    assert split("web@eu-west") == ("web", "eu-west")
    assert split("web") is None
    assert split("@x") is None and split("x@") is None
