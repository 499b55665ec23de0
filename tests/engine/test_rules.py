"""Transitions of the pure rules function, one behaviour per test."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymon.checks.http import HTTP_STATUS
from pymon.checks.tcp import TcpSpec
from pymon.config.schema import FlapGuard, MetricThresholds, NotificationsConfig, ServiceConfig
from pymon.engine import rules
from pymon.model import CheckResult, Event, EventKind, ServiceState, Status
from pymon.ranges import parse_ranges

OK, WARN, ERROR, FAILED, UNKNOWN = (
    Status.OK,
    Status.WARN,
    Status.ERROR,
    Status.FAILED,
    Status.UNKNOWN,
)


def service(**kw: object) -> ServiceConfig:
    return ServiceConfig(
        name="svc",
        type="tcp",
        check=TcpSpec(host="127.0.0.1", port=1),
        **kw,
    )


def step(
    state: ServiceState, result: CheckResult, svc: ServiceConfig, now: float
) -> tuple[ServiceState, list[Event]]:
    """One result through the rules; only the flap guard's own events (changed, confirmed)."""
    out = rules.apply(state, None, result, svc, NotificationsConfig(), rules.Situation(now))
    return out.state, [e for e in out.events if e.kind in GUARD_EVENTS]


GUARD_EVENTS = (EventKind.CHANGED, EventKind.CONFIRMED)


def run(statuses: Sequence[Status], svc: ServiceConfig | None = None) -> list[ServiceState]:
    """Feed results with these statuses; return the state after each."""
    svc = svc or service()
    state = ServiceState("svc")
    out = []
    for i, s in enumerate(statuses):
        state, _ = step(state, CheckResult(s, f"r{i}"), svc, 1000.0 + i)
        out.append(state)
    return out


def test_first_result_shows_at_once_unconfirmed() -> None:
    (s,) = run([ERROR])
    assert (s.status, s.confirmed, s.count) == (ERROR, False, 1)


def test_problem_confirmed_after_three_in_a_row() -> None:
    states = run([ERROR, ERROR, ERROR])
    assert [s.confirmed for s in states] == [False, False, True]
    assert states[-1].confirmed_status is ERROR


def test_ok_confirmed_after_two_in_a_row() -> None:
    states = run([OK, OK])
    assert [s.confirmed for s in states] == [False, True]


def test_flap_guard_is_per_status() -> None:
    svc = service(flap_guard=FlapGuard(failed=1, ok=4))
    assert run([FAILED], svc)[-1].confirmed
    assert [s.confirmed for s in run([OK] * 4, svc)] == [False, False, False, True]


def test_blip_back_to_confirmed_status_is_confirmed_at_once() -> None:
    states = run([OK, OK, ERROR, OK])
    assert states[2].confirmed is False and states[2].confirmed_status is OK
    assert states[3].confirmed is True and states[3].count == 1


def test_recovering_after_confirmed_problem_until_ok_confirmed() -> None:
    states = run([FAILED, FAILED, FAILED, OK, OK])
    assert [s.recovering for s in states] == [False, False, False, True, False]
    assert states[-1].confirmed_status is OK


def test_first_ok_ever_is_not_recovering() -> None:
    assert run([OK])[0].recovering is False


def test_unconfirmed_problem_asks_for_a_quick_retry() -> None:
    states = run([ERROR, ERROR, ERROR])
    assert [rules.wants_retry(s) for s in states] == [True, True, False]


def test_unconfirmed_recovery_asks_for_a_quick_retry() -> None:
    *_, recovering, recovered = run([ERROR, ERROR, ERROR, OK, OK])
    assert (rules.wants_retry(recovering), rules.wants_retry(recovered)) == (True, False)


def test_first_ok_ever_waits_for_the_regular_run() -> None:
    (first,) = run([OK])
    assert not first.confirmed and not rules.wants_retry(first)


def test_count_and_previous_status() -> None:
    states = run([OK, OK, WARN, WARN, WARN])
    assert [s.count for s in states] == [1, 2, 1, 2, 3]
    assert states[-1].previous_status is OK


def test_events_only_on_transitions() -> None:
    svc = service()
    state = ServiceState("svc")
    kinds = []
    for i, s in enumerate([OK, OK, OK, OK, ERROR, ERROR, ERROR, ERROR]):
        state, events = step(state, CheckResult(s, "m"), svc, float(i))
        kinds.append([e.kind for e in events])
    assert kinds == [
        [EventKind.CHANGED],
        [EventKind.CONFIRMED],
        [],
        [],
        [EventKind.CHANGED],
        [],
        [EventKind.CONFIRMED],
        [],
    ]


def test_confirmed_event_names_previous_confirmed_status() -> None:
    svc = service(flap_guard=FlapGuard(ok=1, error=1))
    state, _ = step(ServiceState("svc"), CheckResult(OK, ""), svc, 0.0)
    _, events = step(state, CheckResult(ERROR, "bad"), svc, 1.0)
    confirmed = [e for e in events if e.kind is EventKind.CONFIRMED]
    assert (confirmed[0].status, confirmed[0].previous) == (ERROR, OK)


def test_times_and_seq() -> None:
    states = run([OK, OK, ERROR])
    assert states[-1].last_check == 1002.0
    assert states[-1].last_change == 1002.0
    assert states[1].last_change == 1000.0
    assert states[-1].last_by_status == {"ok": 1001.0, "error": 1002.0}
    assert [s.seq for s in states] == [1, 2, 3]


def test_threshold_worst_status_wins_and_message_names_metric() -> None:
    result = CheckResult(OK, "HTTP 404", {"status_code": 404.0})
    status, message = rules.evaluate(result, {"status_code": HTTP_STATUS})
    assert status is ERROR
    assert message.startswith("status_code 404 is error (400, 404,")
    assert message.endswith("HTTP 404")


def test_threshold_worst_of_several_metrics() -> None:
    limits = {
        "a": MetricThresholds(warn=parse_ranges("10+")),
        "b": MetricThresholds(error=parse_ranges("5+")),
    }
    status, message = rules.evaluate(CheckResult(OK, "", {"a": 11, "b": 6}), limits)
    assert status is ERROR
    assert "a 11 is warn" in message and "b 6 is error" in message


def test_threshold_never_improves_check_status() -> None:
    result = CheckResult(FAILED, "connection refused", {"status_code": 200.0})
    assert rules.evaluate(result, {"status_code": HTTP_STATUS}) == (FAILED, "connection refused")


def test_value_in_no_range_is_unknown_when_ok_is_given() -> None:
    status, message = rules.evaluate(
        CheckResult(OK, "", {"status_code": 418}), {"status_code": HTTP_STATUS}
    )
    assert status is UNKNOWN and "in no range" in message


def test_missing_metric_is_not_judged() -> None:
    assert rules.evaluate(CheckResult(OK, "x"), {"status_code": HTTP_STATUS}) == (OK, "x")


def test_disable_gives_confirmed_disabled_with_one_event() -> None:
    out = rules.disable(ServiceState("svc"), None, 5.0)
    assert (out.state.status, out.state.confirmed) == (Status.DISABLED, True)
    assert {e.kind for e in out.events} == {EventKind.CHANGED, EventKind.CONFIRMED}
    again = rules.disable(out.state, None, 6.0)
    assert again.state == out.state and again.events == []


@pytest.mark.parametrize("guard", [1, 2, 3, 5])
def test_confirmation_needs_exactly_guard_results(guard: int) -> None:
    svc = service(flap_guard=FlapGuard(error=guard))
    states = run([ERROR] * guard, svc)
    assert [s.confirmed for s in states] == [False] * (guard - 1) + [True]


statuses = st.sampled_from([OK, WARN, ERROR, FAILED, UNKNOWN])


@given(st.lists(statuses, min_size=1, max_size=60))
def test_properties_over_random_sequences(seq: list[Status]) -> None:
    svc = service()
    state = ServiceState("svc")
    for i, s in enumerate(seq):
        prev = state
        state, events = step(prev, CheckResult(s, ""), svc, float(i))
        assert state.status is s
        assert state.count == (prev.count + 1 if prev.status is s and prev.count else 1)
        changed = [e for e in events if e.kind is EventKind.CHANGED]
        assert bool(changed) == (prev.status is not s or prev.count == 0)
        confirmed = [e for e in events if e.kind is EventKind.CONFIRMED]
        assert bool(confirmed) == (state.confirmed_status is not prev.confirmed_status)
        if state.confirmed:
            assert state.confirmed_status is s
        assert not (state.recovering and state.confirmed)
