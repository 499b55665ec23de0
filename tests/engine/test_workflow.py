"""The workflow rules: incidents, notices, cut-off, renotify, maintenance, dependencies,
acknowledgement, escalation and flapping, as table tests and properties over random runs."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymon.checks.tcp import TcpSpec
from pymon.config.schema import (
    FlapDetection,
    FlapGuard,
    LogChannel,
    NotificationsConfig,
    Route,
    ServiceConfig,
)
from pymon.engine import flapping, rules
from pymon.model import (
    Ack,
    CheckResult,
    Event,
    EventKind,
    Incident,
    Notice,
    NoticeKind,
    ServiceState,
    Status,
)

OK, WARN, ERROR, FAILED = Status.OK, Status.WARN, Status.ERROR, Status.FAILED
PROBLEM, RECOVERY = NoticeKind.PROBLEM, NoticeKind.RECOVERY
FAST = FlapGuard(ok=1, warn=1, error=1, failed=1, unknown=1)
NO_FLAP = FlapDetection(enabled=False)


def service(**kw: object) -> ServiceConfig:
    base: dict[str, object] = {"flap_guard": FAST, "flap_detection": NO_FLAP}
    return ServiceConfig(
        name="svc", type="tcp", check=TcpSpec(host="127.0.0.1", port=1), **{**base, **kw}
    )


@dataclass
class Sim:
    """Feeds results (a minute apart) through the rules and keeps everything they decided."""

    svc: ServiceConfig = field(default_factory=service)
    policy: NotificationsConfig = field(default_factory=NotificationsConfig)
    state: ServiceState = field(default_factory=lambda: ServiceState("svc"))
    incident: Incident | None = None
    now: float = 1_000_000.0
    events: list[Event] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    def _take(self, out: rules.Outcome) -> rules.Outcome:
        self.state, self.incident = out.state, out.incident
        self.events += out.events
        self.notices += out.notices
        return out

    def result(
        self,
        status: Status,
        *,
        maintenance: bool = False,
        parent_down: bool = False,
        parents: tuple[rules.ParentView, ...] = (),
        dt: float = 60.0,
    ) -> rules.Outcome:
        self.now += dt
        situation = rules.Situation(self.now, maintenance, parent_down, parents)
        return self._take(
            rules.apply(
                self.state,
                self.incident,
                CheckResult(status, status.value),
                self.svc,
                self.policy,
                situation,
            )
        )

    def review(
        self,
        *,
        maintenance: bool = False,
        parent_down: bool = False,
        parents: tuple[rules.ParentView, ...] = (),
    ) -> rules.Outcome:
        situation = rules.Situation(self.now, maintenance, parent_down, parents)
        return self._take(rules.review(self.state, self.incident, self.svc, self.policy, situation))

    def ack(self, expires: float | None = None) -> None:
        assert self.incident is not None
        self.incident, events = rules.acknowledge(
            self.incident, Ack("ann", "on it", self.now, expires)
        )
        self.events += events

    def kinds(self) -> list[NoticeKind]:
        return [n.kind for n in self.notices]

    def event_kinds(self) -> list[EventKind]:
        return [
            e.kind for e in self.events if e.kind not in (EventKind.CHANGED, EventKind.CONFIRMED)
        ]


def test_confirmed_problem_opens_incident_and_sends_one_notice() -> None:
    sim = Sim()
    out = sim.result(ERROR)
    assert out.incident is not None and out.incident.open
    assert sim.state.incident == out.incident.id
    assert sim.kinds() == [PROBLEM]
    assert sim.notices[0].channels == ("log",)
    assert sim.notices[0].key == f"{out.incident.id}:problem:1"


def test_unconfirmed_problem_opens_nothing() -> None:
    sim = Sim(svc=service(flap_guard=FlapGuard()))
    sim.result(ERROR)
    sim.result(ERROR)
    assert sim.incident is None and sim.notices == []
    sim.result(ERROR)
    assert sim.incident is not None and sim.kinds() == [PROBLEM]


def test_confirmed_ok_closes_incident_with_recovery_notice() -> None:
    sim = Sim()
    sim.result(FAILED)
    out = sim.result(OK)
    assert out.incident is not None and out.incident.closed_at == sim.now
    assert sim.state.incident is None
    assert sim.kinds() == [PROBLEM, RECOVERY]
    assert "recovered from failed" in sim.notices[-1].message


def test_recovery_notice_can_be_turned_off() -> None:
    sim = Sim(policy=NotificationsConfig(recovery=False))
    sim.result(FAILED)
    sim.result(OK)
    assert sim.kinds() == [PROBLEM]


def test_worse_status_makes_incident_worse_and_notifies_again() -> None:
    sim = Sim()
    sim.result(WARN)
    sim.result(FAILED)
    assert sim.incident is not None
    assert (sim.incident.status, sim.incident.worst) == (FAILED, FAILED)
    assert EventKind.INCIDENT_WORSE in sim.event_kinds()
    assert [n.status for n in sim.notices] == [WARN, FAILED]


def test_better_problem_status_does_not_notify() -> None:
    sim = Sim()
    sim.result(FAILED)
    sim.result(WARN)
    assert sim.incident is not None
    assert (sim.incident.status, sim.incident.worst) == (WARN, FAILED)
    assert sim.kinds() == [PROBLEM]


def test_renotify_until_cutoff() -> None:
    sim = Sim(policy=NotificationsConfig(renotify=120, cutoff=3))
    for _ in range(20):
        sim.result(ERROR)
    assert sim.kinds() == [PROBLEM] * 3
    assert [n.at - sim.notices[0].at for n in sim.notices] == [0, 120, 240]


def test_no_renotify_by_default() -> None:
    sim = Sim()
    for _ in range(10):
        sim.result(ERROR)
    assert sim.kinds() == [PROBLEM]


def test_notify_false_is_checked_but_never_notified() -> None:
    sim = Sim(svc=service(notify=False))
    sim.result(ERROR)
    sim.result(OK)
    assert sim.incident is not None and not sim.incident.open
    assert sim.notices == []


def test_maintenance_holds_notice_until_the_window_ends() -> None:
    sim = Sim()
    sim.result(ERROR, maintenance=True)
    sim.result(ERROR, maintenance=True)
    assert sim.state.maintenance and sim.notices == []
    assert sim.incident is not None and sim.incident.pending
    sim.result(ERROR)
    assert sim.kinds() == [PROBLEM]
    assert EventKind.MAINTENANCE_STARTED in sim.event_kinds()
    assert EventKind.MAINTENANCE_ENDED in sim.event_kinds()


def test_recovery_in_maintenance_of_an_unnotified_incident_is_silent() -> None:
    sim = Sim()
    sim.result(ERROR, maintenance=True)
    sim.result(OK, maintenance=True)
    sim.result(OK)
    assert sim.notices == []


def test_unreachable_child_is_held_and_notified_if_still_bad_after_parent_recovers() -> None:
    sim = Sim()
    sim.result(FAILED, parent_down=True)
    assert sim.state.unreachable and sim.notices == []
    sim.result(FAILED)
    assert not sim.state.unreachable
    assert sim.kinds() == [PROBLEM]


def test_child_recovering_with_its_parent_sends_nothing() -> None:
    sim = Sim()
    sim.result(FAILED, parent_down=True)
    sim.result(OK)
    assert sim.notices == []


@pytest.mark.parametrize(
    ("parent_down", "maintenance", "then", "kinds"),
    [
        # Back to ok while held: the held notice is dropped, and no recovery follows.
        (True, False, [OK, OK], []),
        (False, True, [OK, OK], []),
        # Down again after a blip of ok, its parent up: notified once, as down.
        (True, False, [OK, FAILED, FAILED], [PROBLEM]),
    ],
)
def test_a_held_notice_never_tells_an_ok_as_a_problem(
    parent_down: bool, maintenance: bool, then: list[Status], kinds: list[NoticeKind]
) -> None:
    # The first ok is unconfirmed (ok: 2), so the incident is still open when the
    # hold ends: the notice owed must not go out then, saying "ok" as a problem.
    sim = Sim(svc=service(flap_guard=FlapGuard(ok=2, failed=1)))
    sim.result(FAILED, parent_down=parent_down, maintenance=maintenance)
    for status in then:
        sim.result(status)
    assert sim.kinds() == kinds
    assert all(n.message == "failed" for n in sim.notices)


STALE = rules.ParentView("gw", decided=True, checked_from=0.0)
UNDECIDED = rules.ParentView("gw", decided=False, checked_from=float("inf"))


def fresh(sim: Sim) -> rules.ParentView:
    return rules.ParentView("gw", decided=True, checked_from=sim.now)


@pytest.mark.parametrize(
    ("parent", "waits"),
    [
        (STALE, True),  # checked before the child's problem began: no word on it yet
        (UNDECIDED, True),  # an unconfirmed problem: may yet be confirmed down
        (rules.ParentView("gw"), False),  # never checked (disabled): nothing to wait for
    ],
)
def test_child_problem_waits_for_its_parents_verdict(parent: rules.ParentView, waits: bool) -> None:
    sim = Sim()
    out = sim.result(FAILED, parents=(parent,))
    assert out.waiting_on == (("gw",) if waits else ())
    assert sim.kinds() == ([] if waits else [PROBLEM])
    assert not sim.state.unreachable


def test_child_notifies_once_its_parent_is_freshly_fine() -> None:
    sim = Sim()
    sim.result(FAILED, parents=(STALE,))
    out = sim.review(parents=(fresh(sim),))
    assert out.waiting_on == ()
    assert sim.kinds() == [PROBLEM]


def test_child_is_unreachable_once_its_parent_is_confirmed_down() -> None:
    sim = Sim()
    sim.result(FAILED, parents=(STALE,))
    out = sim.review(parent_down=True, parents=(fresh(sim),))
    assert out.waiting_on == () and sim.state.unreachable
    sim.result(OK)
    assert sim.notices == []


def test_only_an_owed_notice_waits_for_parents() -> None:
    sim = Sim(policy=NotificationsConfig(renotify=60, cutoff=5))
    sim.result(FAILED)
    out = sim.result(FAILED, parents=(STALE,))
    assert out.waiting_on == ()
    assert sim.kinds() == [PROBLEM, PROBLEM]  # a renotify does not wait


def test_incident_opened_shows_the_status_that_really_was() -> None:
    sim = Sim()
    sim.result(FAILED)  # a new service: it was never ok
    sim.result(OK)
    sim.result(ERROR)
    opened = [e for e in sim.events if e.kind is EventKind.INCIDENT_OPENED]
    assert [(e.previous, e.status) for e in opened] == [(Status.UNKNOWN, FAILED), (OK, ERROR)]


def test_ok_child_of_a_down_parent_is_not_unreachable() -> None:
    sim = Sim()
    sim.result(OK, parent_down=True)
    assert not sim.state.unreachable


def test_ack_stops_renotify_and_recovery_still_comes() -> None:
    sim = Sim(policy=NotificationsConfig(renotify=60, cutoff=10))
    sim.result(ERROR)
    sim.ack()
    for _ in range(5):
        sim.result(ERROR)
    assert sim.kinds() == [PROBLEM]
    sim.result(OK)
    assert sim.kinds() == [PROBLEM, RECOVERY]


def test_worse_status_clears_the_ack_and_notifies() -> None:
    sim = Sim()
    sim.result(WARN)
    sim.ack()
    sim.result(FAILED)
    assert sim.incident is not None and sim.incident.ack is None
    assert EventKind.UNACKNOWLEDGED in sim.event_kinds()
    assert sim.kinds() == [PROBLEM, PROBLEM]


def test_expired_ack_lets_renotify_resume() -> None:
    sim = Sim(policy=NotificationsConfig(renotify=60, cutoff=10))
    sim.result(ERROR)
    sim.ack(expires=sim.now + 150)
    sim.result(ERROR)
    sim.result(ERROR)
    assert sim.kinds() == [PROBLEM]
    sim.result(ERROR)
    assert sim.kinds() == [PROBLEM, PROBLEM]
    assert EventKind.UNACKNOWLEDGED in sim.event_kinds()


# Channels of every kind: the incident services want acknowledgements by default,
# the others only when they say so.
ACK_CHANNELS = {
    "log": {"type": "log"},
    "pager": {"type": "pagerduty", "routing_key": "k"},
    "genie": {"type": "opsgenie", "api_key": "k", "acknowledgements": False},
    "hook": {"type": "webhook", "url": "http://127.0.0.1:9/h", "acknowledgements": True},
    "boss": {"type": "pagerduty", "routing_key": "k2"},
}


def ack_policy(**keys: object) -> NotificationsConfig:
    return NotificationsConfig.model_validate({"channels": ACK_CHANNELS, **keys})


def ack_notice(sim: Sim, kind: NoticeKind = NoticeKind.ACKNOWLEDGED) -> list[Notice]:
    assert sim.incident is not None
    return rules.ack_notice(sim.incident, kind, sim.now, "acknowledged by ann", sim.svc, sim.policy)


def test_an_acknowledgement_is_told_only_to_the_channels_that_want_it() -> None:
    sim = Sim(svc=service(notify=["log", "pager", "genie", "hook"]), policy=ack_policy())
    sim.result(ERROR)
    sim.ack()
    [notice] = ack_notice(sim)
    assert sim.incident is not None
    assert notice.channels == ("pager", "hook")  # not boss: the service does not notify it
    assert (notice.kind, notice.incident, notice.service) == (
        NoticeKind.ACKNOWLEDGED,
        sim.incident.id,
        "svc",
    )
    assert notice.key == f"{sim.incident.id}:acknowledged:{round(sim.now * 1000)}"
    assert notice.since == sim.incident.opened_at
    [back] = ack_notice(sim, NoticeKind.UNACKNOWLEDGED)
    assert back.key != notice.key and back.channels == notice.channels


def test_no_acknowledgement_notice_before_the_incident_was_notified() -> None:
    sim = Sim(policy=ack_policy())
    sim.result(ERROR, maintenance=True)  # held: nobody has heard of it
    assert sim.incident is not None and sim.incident.notices == 0
    assert ack_notice(sim) == []


def test_an_escalated_incident_tells_its_escalation_channels_too() -> None:
    policy = ack_policy(renotify=60, escalate_after_notices=1, escalation=["boss"])
    sim = Sim(svc=service(notify=["log"]), policy=policy)
    sim.result(ERROR)
    assert sim.incident is not None and sim.incident.escalated
    [notice] = ack_notice(sim)
    assert notice.channels == ("boss",)


def test_an_acknowledgement_that_runs_out_is_told_as_taken_back() -> None:
    sim = Sim(policy=ack_policy(renotify=600, cutoff=10))
    sim.result(ERROR)
    sim.ack(expires=sim.now + 30)
    sim.result(ERROR)
    [gone] = [n for n in sim.notices if n.kind is NoticeKind.UNACKNOWLEDGED]
    assert gone.channels == ("pager", "hook", "boss")
    assert gone.message == "acknowledgement expired"


def test_escalation_after_notices_goes_to_escalation_channels_once() -> None:
    policy = NotificationsConfig(
        renotify=60,
        escalate_after_notices=2,
        escalation=["boss"],
        channels={"log": LogChannel(), "boss": LogChannel()},
    )
    sim = Sim(policy=policy)
    for _ in range(6):
        sim.result(ERROR)
    assert sim.kinds() == [PROBLEM, PROBLEM, NoticeKind.ESCALATION, PROBLEM]
    assert sim.notices[2].channels == ("boss",)
    assert sim.incident is not None and sim.incident.escalated


def test_escalation_after_time_unacknowledged() -> None:
    policy = NotificationsConfig(escalate_after=300, escalation=["log"])
    sim = Sim(policy=policy)
    for _ in range(5):
        sim.result(ERROR)
    assert NoticeKind.ESCALATION not in sim.kinds()
    sim.result(ERROR)
    assert sim.kinds() == [PROBLEM, NoticeKind.ESCALATION]


def test_acknowledged_incident_does_not_escalate() -> None:
    sim = Sim(policy=NotificationsConfig(escalate_after=60, escalation=["log"]))
    sim.result(ERROR)
    sim.ack()
    for _ in range(5):
        sim.result(ERROR)
    assert NoticeKind.ESCALATION not in sim.kinds()


def test_flapping_sends_only_started_and_stopped() -> None:
    sim = Sim(svc=service(flap_detection=FlapDetection(window=10, low=20, high=30)))
    for status in [OK, ERROR] * 10:
        sim.result(status)
    assert sim.state.flapping
    started = sim.kinds().index(NoticeKind.FLAPPING_STARTED)
    assert sim.kinds()[started + 1 :] == []
    for _ in range(12):
        sim.result(ERROR)
    assert not sim.state.flapping
    tail = sim.kinds()[started + 1 :]
    assert tail == [NoticeKind.FLAPPING_STOPPED, PROBLEM]


def test_flapping_by_percent_needs_a_full_window_to_start() -> None:
    sim = Sim(svc=service(flap_detection=FlapDetection(window=21, changes=0)))
    for status in [OK, ERROR] * 5:
        sim.result(status)
    assert not sim.state.flapping and sim.state.flap_pct == 100.0
    for status in [OK, ERROR] * 6:
        sim.result(status)
    assert sim.state.flapping


def test_percent_rule_alone_is_nagios_flap_detection() -> None:
    # Soft changes only (the guard never confirms a problem): the percent decides.
    guard = FlapGuard(ok=1, warn=3, error=3, failed=3, unknown=3)
    sim = Sim(svc=service(flap_guard=guard, flap_detection=FlapDetection()))
    for status in [OK, OK, ERROR] * 7:
        sim.result(status)
    assert sim.incident is None and sim.state.flapping
    assert sim.kinds() == [NoticeKind.FLAPPING_STARTED]


# The flap guard pymon ships (ok 2, problems 3) and its default flap detection. Each
# row is a run of results from a steady ok service, and the notices it costs.
GUARDED = FlapGuard()
P, R, FS, FE = PROBLEM, RECOVERY, NoticeKind.FLAPPING_STARTED, NoticeKind.FLAPPING_STOPPED


@pytest.mark.parametrize(
    ("results", "kinds"),
    [
        # An outage and its recovery: two confirmed changes, no flapping.
        ([ERROR] * 3 + [OK] * 2, [P, R]),
        # Back down soon after: the third confirmed change starts flapping instead of
        # a second problem notice.
        ([ERROR] * 3 + [OK] * 2 + [ERROR] * 3, [P, R, FS]),
        ([ERROR] * 4 + [OK] * 3 + [ERROR] * 3 + [OK] * 2 + [ERROR] * 3, [P, R, FS]),
        # Blips the guard never confirms are no confirmed change.
        ([ERROR, ERROR, OK, ERROR, OK, OK, ERROR, ERROR, OK] + [ERROR] * 3, [P]),
        # From the first result on: the first confirmed problem counts as a change.
        ([OK, ERROR, ERROR, ERROR, OK, OK, ERROR, ERROR, ERROR], [P, R, FS]),
        # Spread further apart than the window: each one is an outage of its own.
        ([ERROR] * 3 + [OK] * 2 + [OK] * 16 + [ERROR] * 3 + [OK] * 2, [P, R, P, R]),
        # A worse and then a milder status are changes too; the open incident's thread
        # gets the flapping notice, and later its recovery.
        ([WARN] * 3 + [ERROR] * 3 + [WARN] * 3 + [OK] * 2, [P, P, FS, R]),
    ],
)
def test_confirmed_changes_start_flapping(results: list[Status], kinds: list[NoticeKind]) -> None:
    sim = Sim(svc=service(flap_guard=GUARDED, flap_detection=FlapDetection()))
    for status in results:
        sim.result(status)
    assert sim.kinds() == kinds


def test_flapping_notice_joins_the_open_thread_and_says_notices_are_held() -> None:
    sim = Sim(svc=service(flap_guard=GUARDED, flap_detection=FlapDetection()))
    for status in [WARN] * 3 + [ERROR] * 3 + [WARN] * 3:
        sim.result(status)
    assert sim.incident is not None and sim.state.flapping
    started = sim.notices[-1]
    assert started.kind is FS and started.incident == sim.incident.id
    assert started.message.startswith("flapping started: notices held; 3 confirmed changes")
    for status in [OK] * 2:
        sim.result(status)
    recovery = sim.notices[-1]
    assert recovery.kind is R and recovery.incident == started.incident
    assert "still flapping" in recovery.message


def test_flapping_stops_once_the_window_holds_no_confirmed_change() -> None:
    detection = FlapDetection(window=10)
    sim = Sim(svc=service(flap_guard=GUARDED, flap_detection=detection))
    for status in [ERROR] * 3 + [OK] * 2 + [ERROR] * 3 + [OK] * 2:
        sim.result(status)
    assert sim.state.flapping
    for _ in range(9):
        sim.result(OK)
    # The last confirmed change (the second OK above) is still the window's oldest result.
    assert sim.state.flapping and sim.state.flap_history == "Oooooooooo"
    sim.result(OK)
    assert not sim.state.flapping and sim.kinds()[-1] is FE
    # Steady again: one new outage is an outage, not flapping.
    for status in [ERROR] * 3 + [OK] * 2:
        sim.result(status)
    assert sim.kinds()[-3:] == [FE, P, R]


# Upper case marks a result that confirmed a change: counted by confirmed_changes,
# ignored by the percent.
@pytest.mark.parametrize(
    ("history", "pct", "changes"),
    [
        ("", 0.0, 0),
        ("o", 0.0, 0),
        ("oooo", 0.0, 0),
        ("oeoe", 100.0, 0),
        ("oe", 100.0, 0),
        ("oEoE", 100.0, 2),
        ("ooOo", 0.0, 1),
        ("OEOEO", 100.0, 5),
        ("wWeEfFuU", 3 / 7 * 100, 4),
    ],
)
def test_flap_percent_and_confirmed_changes(history: str, pct: float, changes: int) -> None:
    assert flapping.flap_percent(history) == pytest.approx(pct, abs=0.01)
    assert flapping.confirmed_changes(history) == changes


def test_recent_changes_weigh_more() -> None:
    assert flapping.flap_percent("oooooooooe") > flapping.flap_percent("eooooooooo")


def test_routes_choose_channels_by_status_and_tag() -> None:
    policy = NotificationsConfig(
        channels={"ops": LogChannel(), "db": LogChannel(), "pager": LogChannel()},
        routes=[
            Route(channels=["ops"]),
            Route(channels=["db"], tags=["database"]),
            Route(channels=["pager"], statuses=["failed"]),
        ],
    )
    db = service(tags=["database"])
    assert rules.channels_for(db, policy, ERROR) == ("ops", "db")
    assert rules.channels_for(db, policy, FAILED) == ("ops", "db", "pager")
    assert rules.channels_for(service(), policy, WARN) == ("ops",)
    assert rules.channels_for(service(notify=["pager"]), policy, WARN) == ("pager",)
    assert rules.channels_for(service(notify=False), policy, FAILED) == ()
    assert rules.channels_for(db, NotificationsConfig(enabled=False), FAILED) == ()


def test_disabling_closes_the_incident_without_recovery() -> None:
    sim = Sim()
    sim.result(ERROR)
    out = rules.disable(sim.state, sim.incident, sim.now + 1)
    assert out.incident is not None and not out.incident.open
    assert out.notices == [] and out.state.incident is None


def test_review_after_maintenance_ends_sends_the_held_notice() -> None:
    sim = Sim()
    sim.result(ERROR, maintenance=True)
    sim.review()
    assert sim.kinds() == [PROBLEM]


# -- properties over random runs ----------------------------------------------------

step = st.tuples(
    st.sampled_from([OK, WARN, ERROR, FAILED, Status.UNKNOWN]),
    st.booleans(),  # maintenance
    st.booleans(),  # parent down
    st.sampled_from(["none", "none", "none", "ack", "unack"]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(step, min_size=1, max_size=80),
    st.integers(min_value=1, max_value=4),
    st.sampled_from([0.0, 60.0, 150.0]),
    st.booleans(),
)
def test_properties(
    steps: list[tuple[Status, bool, bool, str]], cutoff: int, renotify: float, flap: bool
) -> None:
    guard = FlapGuard(ok=2, warn=2, error=2, failed=2, unknown=2)
    detection = FlapDetection(window=8, changes=3, low=20, high=40) if flap else NO_FLAP
    sim = Sim(
        svc=service(flap_guard=guard, flap_detection=detection),
        policy=NotificationsConfig(
            cutoff=cutoff, renotify=renotify, escalation=["log"], escalate_after_notices=2
        ),
    )
    opened: list[str] = []
    closed: list[str] = []
    problems: dict[str, int] = {}
    recovered: list[str] = []
    for status, maintenance, parent_down, action in steps:
        if sim.incident is not None and sim.incident.open:
            if action == "ack":
                sim.ack()
            elif action == "unack":
                sim.incident, _ = rules.unacknowledge(sim.incident, sim.now, "test")
        held_ack = sim.incident is not None and sim.incident.open and sim.incident.ack is not None
        before = len(sim.notices)
        out = sim.result(status, maintenance=maintenance, parent_down=parent_down)
        new = sim.notices[before:]
        assert 0.0 <= sim.state.flap_pct <= 100.0
        for event in out.events:
            if event.kind is EventKind.INCIDENT_OPENED:
                assert out.incident is not None
                opened.append(out.incident.id)
            if event.kind is EventKind.INCIDENT_CLOSED:
                assert out.incident is not None
                closed.append(out.incident.id)
        for notice in new:
            if notice.kind is PROBLEM:
                assert notice.incident is not None
                problems[notice.incident] = problems.get(notice.incident, 0) + 1
                # Held while in maintenance, unreachable, flapping or acknowledged,
                # and never telling an ok as a problem.
                assert not (sim.state.maintenance or sim.state.unreachable or sim.state.flapping)
                assert sim.state.status.is_problem
                assert not held_ack or out.incident is None or out.incident.ack is None
            elif notice.kind is NoticeKind.ESCALATION:
                assert not (sim.state.maintenance or sim.state.unreachable or sim.state.flapping)
            elif notice.kind in (NoticeKind.FLAPPING_STARTED, NoticeKind.FLAPPING_STOPPED):
                assert not sim.state.maintenance
            else:
                assert notice.kind is RECOVERY
                assert notice.incident in problems  # only after a problem notice
                recovered.append(notice.incident)
    assert all(count <= cutoff for count in problems.values())
    # Every thread people saw is ended: a notified incident that closes gets its recovery.
    assert sorted(recovered) == sorted(i for i in closed if i in problems)
    assert len(set(opened)) == len(opened)
    assert len(set(closed)) == len(closed)
    assert set(closed) <= set(opened)
    assert len(opened) - len(closed) == (1 if sim.incident is not None and sim.incident.open else 0)
    keys = [n.key for n in sim.notices]
    assert len(keys) == len(set(keys))
