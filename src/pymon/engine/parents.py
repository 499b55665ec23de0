"""Who waits on whom: a child's problem notice held until its parents have a fresh verdict.

When a service with ``depends_on`` confirms a problem, the rules hold its notice
until every parent has a decided result from a check that began after the child's
trouble did (``Outcome.waiting_on``). :class:`ParentWatch` keeps the runtime's side
of that: which children wait on which parent, and which parents were asked to run
out of turn, so a parent is run once however many children ask, and the waiting
children are decided again as soon as it answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from pymon.engine.rules import ParentView
from pymon.model import ServiceState

__all__ = ["ParentWatch"]


class ParentWatch:
    """Children waiting on parents, and the parents asked to run now."""

    def __init__(self, run_now: Callable[[str], None]) -> None:
        self._run_now = run_now
        self._waiting: dict[str, set[str]] = {}
        # Parent -> when its out-of-turn run was asked (one run, however many ask).
        self._asked: dict[str, float] = {}

    @staticmethod
    def view(parent: ServiceState, scheduled: bool) -> ParentView:
        """What the rules need of ``parent``: is its verdict decided, and since when."""
        if not scheduled:
            return ParentView(parent.name)  # never checked: nothing to wait for
        return ParentView(
            parent.name,
            decided=parent.confirmed or not parent.status.is_problem,
            checked_from=-math.inf
            if parent.last_check is None
            else parent.last_check - parent.last_duration,
        )

    def wait(
        self, child: str, parents: Iterable[tuple[str, ServiceState | None, bool]], now: float
    ) -> list[str]:
        """``child`` waits on ``parents`` (name, state, scheduled); the parents to run
        now: not asked yet, scheduled, and not merely unconfirmed (whose own retry
        settles it)."""
        run = []
        for name, state, scheduled in parents:
            self._waiting.setdefault(name, set()).add(child)
            if name in self._asked or not scheduled or state is None:
                continue
            if state.seq > 0 and state.status.is_problem and not state.confirmed:
                continue
            self._asked[name] = now
            self._run_now(name)
            run.append(name)
        return run

    def asked(self, name: str) -> bool:
        """Whether ``name`` was asked to run out of turn and has not run since."""
        return name in self._asked

    def ran(self, name: str, started: float) -> None:
        """A run of ``name`` that began at ``started`` ended: an ask before it is served."""
        if self._asked.get(name, math.inf) <= started:
            del self._asked[name]

    def answered(self, parent: str) -> list[str]:
        """``parent`` has a new result: the children waiting on it, to decide again."""
        if not self._waiting:
            return []  # the common case, without a sort per result
        return sorted(self._waiting.pop(parent, ()))
