"""``status_pages``: public pages that show services under public names (docs/status-pages.md).

A page has a URL-safe ``slug`` (served at ``/status/{slug}``), a ``title``, an
optional ``description`` and ``logo``, and ``groups`` of components. A component
is a public name for one service (``service``) or for every service with any of
``tags`` (the worst of them wins). Which services exist, and which tags they
carry, is checked across the config in ``crosscheck.py``; this module checks the
shape and the bounds.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import Field, field_validator, model_validator

from pymon.checks.spec import StrictModel
from pymon.durations import Duration

__all__ = [
    "MAX_COMPONENTS",
    "MAX_GROUPS",
    "MAX_PAGES",
    "StatusComponent",
    "StatusGroup",
    "StatusPage",
]

MAX_PAGES: Final = 50
"""The most status pages a config may have."""

MAX_GROUPS: Final = 50
"""The most groups a status page may have."""

MAX_COMPONENTS: Final = 500
"""The most components a status page may have, over all its groups."""

_SLUG: Final = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,62})", re.ASCII)
_URL: Final = re.compile(r"https?://[^\s/\"'<>]+(/[^\s\"'<>]*)?", re.ASCII)

PublicText = Annotated[str, Field(min_length=1, max_length=200)]


class StatusComponent(StrictModel):
    """A public name for one service, or for every service with any of ``tags``."""

    name: PublicText
    service: str | None = Field(default=None, min_length=1)
    tags: list[str] | None = Field(default=None, min_length=1, max_length=50)

    @model_validator(mode="after")
    def _one_source(self) -> StatusComponent:
        if (self.service is None) == (self.tags is None):
            raise ValueError("give exactly one of service (a name) or tags (a list)")
        return self

    @property
    def selector(self) -> tuple[str, ...]:
        """What the component shows, as written: its service, or its tags."""
        return (self.service,) if self.service is not None else tuple(self.tags or ())


class StatusGroup(StrictModel):
    """A heading on the page and the components under it."""

    name: PublicText
    components: list[StatusComponent] = Field(min_length=1, max_length=MAX_COMPONENTS)


class StatusPage(StrictModel):
    """One public status page (``/status/{slug}`` and ``/status/{slug}.json``).

    ``show_details`` shows each service's last check message too; without it a page
    shows public names, states, uptime and incident times only. ``cache`` is how long
    a rendering is served (0: every request renders the page anew).
    """

    slug: str
    title: PublicText
    description: str = Field(default="", max_length=2000)
    logo: str | None = Field(default=None, max_length=2000)
    show_details: bool = False
    cache: Duration = Field(default=10.0, ge=0, le=300)
    groups: list[StatusGroup] = Field(min_length=1, max_length=MAX_GROUPS)

    @field_validator("slug")
    @classmethod
    def _check_slug(cls, value: str) -> str:
        if _SLUG.fullmatch(value) is None:
            raise ValueError(
                f"{value!r} is not a slug: 1 to 63 of a-z, 0-9, - and _, "
                "starting with a letter or digit"
            )
        return value

    @field_validator("logo")
    @classmethod
    def _check_logo(cls, value: str | None) -> str | None:
        if value is not None and _URL.fullmatch(value) is None:
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _bounded(self) -> StatusPage:
        total = sum(len(group.components) for group in self.groups)
        if total > MAX_COMPONENTS:
            raise ValueError(
                f"a status page may have at most {MAX_COMPONENTS} components, this one has {total}"
            )
        return self

    def components(self) -> list[StatusComponent]:
        """Every component of the page, in page order."""
        return [component for group in self.groups for component in group.components]
