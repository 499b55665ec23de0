"""Checks across services and sections, which no single model can make.

Unique service names, without ``@`` (it names location checks); unique values of the
keys a check type declares unique (``CheckSpec.unique_fields``, e.g. a heartbeat's
``token``); ``depends_on`` naming known services, without cycles; channels named by
routes, the escalation, ``defaults`` and services existing; an e-mail channel for
acknowledgement replies.

The services are read as written, so that a service with some other error still
counts: its dependants are not told it is unknown, and its name is still taken.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pymon.checks import REGISTRY
from pymon.config.messages import format_path, unknown_channel, unknown_service
from pymon.config.schema import SEPARATOR, Config, ServiceConfig
from pymon.config.tree import KeyPath, Tree

__all__ = ["check_channels", "check_reply_channel", "check_services", "check_status_pages"]


def check_services(tree: Tree, raw: list[Any]) -> None:
    """Unique names and unique fields, known ``depends_on``, no dependency cycle."""
    first = _unique(tree, raw, "services", "name", "service name")
    for name, i in first.items():
        if SEPARATOR in name:
            # Checked here, once per name, rather than by a validator of the model,
            # which every service passes twice (as written, then merged).
            tree.issue(
                ("services", i, "name"),
                f"{name!r}: {SEPARATOR!r} is reserved for location checks "
                f"(service{SEPARATOR}location)",
            )
    _unique_fields(tree, raw)
    graph: dict[str, list[tuple[str, KeyPath]]] = {name: [] for name in first}
    for name, i in first.items():
        deps = raw[i].get("depends_on")
        for k, dep in enumerate(deps if isinstance(deps, list) else []):
            path: KeyPath = ("services", i, "depends_on", k)
            if not isinstance(dep, str):
                continue  # ServiceCommon's validation reports it
            if dep in first:
                graph[name].append((dep, path))
            else:
                tree.issue(path, unknown_service(dep, first))
    for cycle in _cycles({n: [d for d, _ in edges] for n, edges in graph.items()}, first):
        path = next(p for d, p in graph[cycle[0]] if d == cycle[1])
        tree.issue(path, "dependency cycle: " + " -> ".join(cycle))


def _unique(tree: Tree, raw: Any, section: str, key: str, what: str) -> dict[str, int]:
    """Each value of ``key`` in the list ``section`` -> the index of its first item;
    an issue at each later item that repeats one."""
    first: dict[str, int] = {}
    for i, item in _mappings(raw):
        value = item.get(key)
        if not isinstance(value, str):
            continue
        if value in first:
            where = tree.place((section, first[value], key), (section, i))
            tree.issue((section, i, key), f"duplicate {what} {value!r} (first defined at {where})")
        else:
            first[value] = i
    return first


def _unique_fields(tree: Tree, raw: list[Any]) -> None:
    """No two services of a type share a value of a key its spec declares unique.

    A heartbeat's push must reach exactly one service. The value may be a secret
    (a token): the message never shows it.
    """
    owner: dict[tuple[str, str, str | int | float], int] = {}
    for i, item in _mappings(raw):
        kind_name = item.get("type")
        kind = REGISTRY.get(kind_name) if isinstance(kind_name, str) else None
        if kind is None:
            continue
        for key in kind.spec.unique_fields:
            value = item.get(key)
            if not isinstance(value, str | int | float):
                continue  # missing, or the wrong type, which validation reports
            first = owner.setdefault((kind.name, key, value), i)
            if first != i:
                where = tree.place(("services", first, key), ("services", i))
                tree.issue(
                    ("services", i, key),
                    f"{key} already used by service {raw[first].get('name')!r}"
                    f" ({where}); each {kind.name} needs its own",
                )


def _cycles(graph: Mapping[str, list[str]], order: Mapping[str, int]) -> list[list[str]]:
    """Each distinct cycle of ``graph``, e.g. ``[a, b, a]``, starting at its first-defined node.

    Iterative depth-first search: a long chain of dependencies must not hit the
    recursion limit.
    """
    on_trail: set[str] = set()
    done: set[str] = set()
    found: dict[frozenset[str], list[str]] = {}
    for root in graph:
        if root in done:
            continue
        trail = [root]
        on_trail.add(root)
        stack = [iter(graph[root])]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                done.add(trail[-1])
                on_trail.discard(trail.pop())
            elif nxt in on_trail:
                loop = trail[trail.index(nxt) :]
                start = min(range(len(loop)), key=lambda j: order[loop[j]])
                loop = loop[start:] + loop[:start]
                found.setdefault(frozenset(loop), [*loop, loop[0]])
            elif nxt not in done:
                trail.append(nxt)
                on_trail.add(nxt)
                stack.append(iter(graph[nxt]))
    return list(found.values())


def check_channels(tree: Tree, top: dict[str, Any], known: set[str]) -> None:
    """Every channel a route, the escalation, ``defaults`` or a service names exists."""
    places: list[tuple[KeyPath, Any]] = []
    notifications = top.get("notifications")
    if isinstance(notifications, dict):
        places.append((("notifications", "escalation"), notifications.get("escalation")))
        for i, route in _mappings(notifications.get("routes")):
            places.append((("notifications", "routes", i, "channels"), route.get("channels")))
    defaults = top.get("defaults")
    if isinstance(defaults, dict):
        places.append((("defaults", "notify"), defaults.get("notify")))
    for i, item in _mappings(top.get("services")):
        places.append((("services", i, "notify"), item.get("notify")))
    reported = {(issue.file, issue.path) for issue in tree.issues}
    for path, names in places:
        for k, name in enumerate(names if isinstance(names, list) else []):
            where = (*path, k)
            file, shown = tree.locate(where)
            # A name already reported (e.g. an unset ${VAR}) is not unknown on top.
            if (
                isinstance(name, str)
                and name not in known
                and (file, format_path(shown)) not in reported
            ):
                tree.issue(where, unknown_channel(name, known))


def _mappings(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each mapping in ``value`` with its index, if ``value`` is a list (it may hold anything)."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict):
                yield i, item


def check_reply_channel(tree: Tree, base: Config) -> None:
    """Confirmations of acknowledgements go out through an e-mail channel."""
    acks = base.acknowledgements
    if acks.listen is None or not acks.confirm:
        return
    emails = [n for n, c in base.notifications.channels.items() if c.type == "email"]
    if acks.reply_channel is None:
        if not emails:
            tree.issue(
                ("acknowledgements", "confirm"),
                "confirmations need an e-mail channel under notifications.channels "
                "(or set confirm: false)",
            )
    elif acks.reply_channel not in emails:
        tree.issue(
            ("acknowledgements", "reply_channel"),
            f"{acks.reply_channel!r} is not an e-mail channel (e-mail channels: "
            + (", ".join(emails) or "none")
            + ")",
        )


def check_status_pages(
    tree: Tree, raw: Any, services: list[Any], built: Iterable[ServiceConfig]
) -> None:
    """Unique slugs; each component's ``service`` known and each of its ``tags`` carried
    by some service (an error: a tag that matches nothing is a typo far more often
    than a service yet to come, and its component would show "no data" for good).

    Services are read as written (``services``) for their names, so a service with
    another error is not also called unknown; tags are the effective ones of the
    services built (``built``: inherited tags included) and the ones written.
    """
    names = {item["name"] for _, item in _mappings(services) if isinstance(item.get("name"), str)}
    tags = {tag for service in built for tag in service.tags}
    for _, item in _mappings(services):
        written = item.get("tags")
        tags |= {t for t in written if isinstance(t, str)} if isinstance(written, list) else set()
    _unique(tree, raw, "status_pages", "slug", "slug")
    for i, page in _mappings(raw):
        for g, group in _mappings(page.get("groups")):
            for c, component in _mappings(group.get("components")):
                path: KeyPath = ("status_pages", i, "groups", g, "components", c)
                _check_component(tree, path, component, names, tags)


def _check_component(
    tree: Tree, path: KeyPath, component: dict[str, Any], names: set[str], tags: set[str]
) -> None:
    service = component.get("service")
    if isinstance(service, str) and service and service not in names:
        tree.issue((*path, "service"), unknown_service(service, names))
    wanted = component.get("tags")
    for k, tag in enumerate(wanted if isinstance(wanted, list) else []):
        if isinstance(tag, str) and tag not in tags:
            known = ", ".join(sorted(tags)[:20]) or "none"
            tree.issue((*path, "tags", k), f"no service has the tag {tag!r} (tags: {known})")
