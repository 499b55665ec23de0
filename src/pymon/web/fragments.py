"""Each service's JSON, encoded once per state: the bytes a listing of 10,000 services
is joined from.

A service's JSON (:func:`~pymon.web.views.service_json`) depends only on the parts of
its :class:`~pymon.engine.ports.ServiceView`: its config, its state and its incident
(immutable values, replaced whole by the engine when anything changes), the node
that runs it and, for a service with locations, its locations' results and their
verdict (compared by value: the engine may build them afresh for each view).
:class:`ServiceFragments` keeps the encoded bytes beside the very objects they were
made from, so a fragment is reused while the engine hands out the same objects and
made again the first time it hands out new ones: no timer, no subscription, nothing
to invalidate by hand. The bytes are what FastAPI's own encoder
(pydantic's) makes of the dict, so a listing joined from them is byte for byte the
answer the route would give by returning the dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json

from pymon.web.views import service_json

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from pymon.config.schema import ServiceConfig
    from pymon.engine.ports import ServiceView
    from pymon.locations import Combined, LocationResult
    from pymon.model import Incident, ServiceState

__all__ = ["Fields", "ServiceFragments", "json_bytes"]


def json_bytes(value: Any) -> bytes:
    """``value`` as compact JSON, as FastAPI answers a route's dict (NaN and infinities
    as null, text as UTF-8)."""
    return to_json(value, inf_nan_mode="null")


@dataclass(frozen=True, slots=True)
class _Fragment:
    """One service's bytes and the parts of the view they were encoded from."""

    config: ServiceConfig
    state: ServiceState
    incident: Incident | None
    node: str | None
    locations: Mapping[str, LocationResult]
    combined: Combined | None
    data: bytes

    def fits(self, view: ServiceView) -> bool:
        # Identity, not equality: the engine replaces a state or incident whole when it
        # changes, and comparing 20 fields per service would cost what encoding saves.
        # The fragment holds the objects, so their ids cannot be reused meanwhile.
        return (
            view.state is self.state
            and view.incident is self.incident
            and view.config is self.config
            and view.node == self.node
            # Empty for a service without locations: two empty dicts compare at once.
            and view.combined == self.combined
            and view.locations == self.locations
        )


Fields = tuple[str, ...] | None
"""A selection of a service's keys, in the order wanted; None for all of them."""


class ServiceFragments:
    """The encoded JSON of each service, by selection of keys and by name, made again
    when its view's parts change.

    The ``selections`` most recently asked for are kept (the whole JSON, and what the
    pages and a few machines ask for); a selection asked for again after falling out
    starts over, encoding each service once more.
    """

    def __init__(self, selections: int = 4) -> None:
        self._selections = selections
        self._kept: dict[Fields, dict[str, _Fragment]] = {}

    def __len__(self) -> int:
        return sum(len(by_name) for by_name in self._kept.values())

    def encoder(self, fields: Fields = None) -> Callable[[ServiceView], bytes]:
        """How each service is encoded: ``service_json(view)``, cut to ``fields`` when
        given, as compact JSON bytes (made now, or kept from before)."""
        # Kept in order of use: the least recently used selection is the first.
        by_name = self._kept.pop(fields, None) or {}
        self._kept[fields] = by_name
        while len(self._kept) > self._selections:
            del self._kept[next(iter(self._kept))]

        def encode(view: ServiceView) -> bytes:
            kept = by_name.get(view.name)
            if kept is not None and kept.fits(view):
                return kept.data
            whole = service_json(view)
            data = json_bytes(whole if fields is None else {f: whole[f] for f in fields})
            by_name[view.name] = _Fragment(
                view.config,
                view.state,
                view.incident,
                view.node,
                view.locations,
                view.combined,
                data,
            )
            return data

        return encode

    def keep_only(self, names: Iterable[str]) -> None:
        """Forget the services not in ``names`` (gone with a reload), when there are any."""
        current = set(names)
        for fields, by_name in self._kept.items():
            if not current.issuperset(by_name):
                self._kept[fields] = {n: f for n, f in by_name.items() if n in current}
