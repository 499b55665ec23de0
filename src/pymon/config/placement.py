"""Where a service is checked from: its ``locations`` and ``quorum``, once inherited.

Each key alone is validated by the schema (a location's name, a quorum of 1 to 32
or ``all``); a location listed twice is found here, in each level that lists
locations (:func:`check_listed`: ``defaults``, ``defaults.<type>``, a service), so
that no validator runs for the services that list none. Whether the keys fit the
service is known only after inheritance, since either may come from ``defaults``;
an issue then points at the key to fix where the operator wrote it:

- a check type whose keys must be unique (a heartbeat's ``token``: a push must
  reach one service) cannot have locations, since each location check is a copy of
  the check: at ``locations`` in the service or the ``defaults.<type>`` section.
  Locations it would inherit from ``defaults`` itself do not apply to it (they are
  dropped, so that ``defaults.locations`` can serve a config with heartbeats);
- a whole-number ``quorum`` above the number of ``locations``: at ``quorum``, in the
  service or the ``defaults`` section it comes from (when ``locations`` come from
  there too; when the service lists its own, at its ``locations``, naming the line
  of the inherited quorum);
- ``quorum`` written in a service that ends up with no locations: at that
  ``quorum`` (an inherited one is fine: ``defaults`` may set a quorum for the
  services that list locations).
"""

from __future__ import annotations

from typing import Any

from pymon.config.messages import format_path
from pymon.config.schema import ServiceConfig
from pymon.config.tree import KeyPath, Tree

__all__ = ["check_listed", "place"]


def check_listed(tree: Tree, listed: list[str], path: KeyPath) -> None:
    """An issue at ``path`` (a ``locations`` key) if ``listed`` names a location twice."""
    if len(set(listed)) < len(listed):
        twice = next(loc for n, loc in enumerate(listed) if loc in listed[:n])
        tree.issue(path, f"location {twice!r} is listed twice")


def place(
    tree: Tree,
    raw: dict[str, Any],
    service: ServiceConfig,
    path: KeyPath,
    origins: tuple[KeyPath | None, KeyPath | None],
) -> ServiceConfig:
    """``service`` (written as ``raw`` at ``path``) with what is wrong with its
    locations and quorum recorded in ``tree``; without inherited locations its type
    cannot have. ``origins``: where the inherited ``quorum`` and ``locations`` are set
    (``Inheritance.origin``)."""
    if "locations" in raw:
        check_listed(tree, service.locations, (*path, "locations"))
    unique = service.check.unique_fields
    if service.locations and unique:
        locations_at = origins[1]
        if "locations" not in raw and locations_at == ("defaults", "locations"):
            return service.model_copy(update={"locations": []})
        shared = " and ".join(unique)
        tree.issue(
            (*path, "locations") if "locations" in raw else locations_at or path,
            f"a {service.type} service cannot be checked from locations: each location's "
            f"check would share its {shared}",
        )
        return service
    issue = _quorum_issue(service, path, "quorum" in raw, "locations" in raw, origins)
    if issue is not None:
        where, message, quorum_at = issue
        if quorum_at is not None:
            written = f"{format_path(quorum_at)}, {tree.place(quorum_at, where)}"
            message = f"{message} (quorum from {written})"
        tree.issue(where, message)
    return service


def _quorum_issue(
    service: ServiceConfig,
    path: KeyPath,
    own_quorum: bool,
    own_locations: bool,
    origins: tuple[KeyPath | None, KeyPath | None],
) -> tuple[KeyPath, str, KeyPath | None] | None:
    """What is wrong between the quorum and locations of ``service`` (at ``path``):
    the path of the key to fix (the service's, or in ``defaults``), the message, and
    the inherited quorum's path to name beside it; None if nothing."""
    quorum, listed = service.quorum, len(service.locations)
    if own_quorum and not listed:
        unused = "quorum is set but the service lists no locations (add locations, or drop quorum)"
        return (*path, "quorum"), unused, None
    if not isinstance(quorum, int) or quorum <= listed:
        return None
    too_many = f"quorum {quorum} is more than the {listed} locations listed"
    quorum_at, locations_at = origins
    if own_quorum or quorum_at is None:
        return (*path, "quorum"), too_many, None
    if own_locations or locations_at is None:
        return (*path, "locations"), too_many, quorum_at
    # Both from defaults: one issue there, however many services inherit them.
    return quorum_at, too_many, None
