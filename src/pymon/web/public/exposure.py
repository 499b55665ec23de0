"""What the config makes public: each status page's components with the services
they show, and the services that have badges, under which label.

Built once per config (a reload makes a new one) and kept on the app, so a request
for a page or a badge does not walk every service's tags again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import Request

from pymon.config.pages import StatusComponent, StatusPage
from pymon.config.schema import Config
from pymon.web.engine import port_of

__all__ = ["Exposure", "exposure_of"]


@dataclass(frozen=True, slots=True)
class Exposure:
    """The public side of one config.

    ``members`` maps each component (by identity) to the services it shows, in config
    order; ``labels`` maps each service that has badges to its badge label: the name
    of the first component that shows it, else (``badge: true``) its own name.
    """

    pages: Mapping[str, StatusPage]
    members: Mapping[int, tuple[str, ...]]
    labels: Mapping[str, str]

    @classmethod
    def of(cls, config: Config) -> Exposure:
        """The exposure of ``config``."""
        members: dict[int, tuple[str, ...]] = {}
        labels: dict[str, str] = {}
        for page in config.status_pages:
            for component in page.components():
                shown = _members(config, component)
                members[id(component)] = shown
                for name in shown:
                    labels.setdefault(name, component.name)
        for service in config.services:
            if service.badge:
                labels.setdefault(service.name, service.name)
        return cls({p.slug: p for p in config.status_pages}, members, labels)

    def services_of(self, component: StatusComponent) -> tuple[str, ...]:
        """The services ``component`` shows."""
        return self.members.get(id(component), ())

    def services_on(self, page: StatusPage) -> list[str]:
        """Every service ``page`` shows, once each, in page order."""
        seen: dict[str, None] = {}
        for component in page.components():
            seen.update(dict.fromkeys(self.services_of(component)))
        return list(seen)


def _members(config: Config, component: StatusComponent) -> tuple[str, ...]:
    if component.service is not None:
        return (component.service,) if config.service(component.service) else ()
    wanted = set(component.tags or ())
    return tuple(s.name for s in config.services if wanted.intersection(s.tags))


def exposure_of(request: Request) -> Exposure:
    """The exposure of the config the engine runs now (made on first use after a load
    or a reload)."""
    config = port_of(request).config
    held: tuple[Config, Exposure] | None = getattr(request.app.state, "exposure", None)
    if held is None or held[0] is not config:
        held = (config, Exposure.of(config))
        request.app.state.exposure = held
    return held[1]
