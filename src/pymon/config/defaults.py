"""``defaults`` and its per-type sections, and what the services of each type inherit.

``defaults`` holds inheritable keys (``schema.Inheritable``); a section named after a
check type (``defaults.http``) holds inheritable keys too and the type's own keys. A
key with an error is reported here, once, and left out of what services inherit, so
that the same mistake is not reported again for every service; the keys beside it
are still inherited, so that they cause no more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from pymon.checks import REGISTRY, CheckType
from pymon.config.inheritance import inherit
from pymon.config.messages import show, unknown_key
from pymon.config.placement import check_listed
from pymon.config.schema import Defaults, Inheritable
from pymon.config.tree import KeyPath, Tree
from pymon.config.validation import validate

__all__ = ["Inheritance", "Section", "read_defaults"]

M = TypeVar("M", bound=BaseModel)

_INHERITABLE: Final = list(Inheritable.model_fields)


@dataclass(frozen=True, slots=True)
class Section:
    """A validated ``defaults.<type>`` section.

    ``common``: its inheritable keys; ``own``: the type's own keys (without those with
    errors); ``raw``: the section as written, kept in ``Config.defaults``.
    """

    common: Defaults
    own: dict[str, Any]
    raw: dict[str, Any]


@dataclass
class Inheritance:
    """``defaults`` and its sections; what a service of each type inherits."""

    defaults: Defaults = field(default_factory=Defaults)
    sections: dict[str, Section] = field(default_factory=dict)
    _by_type: dict[str, dict[str, Any]] = field(default_factory=dict, init=False, repr=False)

    def inherited(self, kind: CheckType) -> dict[str, Any]:
        """Every inheritable key for a service of type ``kind``, before its own keys.

        The levels, weakest first: the schema's defaults with the check type's own
        thresholds, ``defaults``, ``defaults.<type>``.
        """
        found = self._by_type.get(kind.name)
        if found is None:
            found = {**dict(Inheritable()), "thresholds": dict(kind.thresholds)}
            found = inherit(found, self.defaults)
            section = self.sections.get(kind.name)
            if section is not None:
                found = inherit(found, section.common)
            self._by_type[kind.name] = found
        return found

    def origin(self, kind: CheckType, key: str) -> KeyPath | None:
        """Where an inheritable ``key`` a service of type ``kind`` inherits is set:
        ``defaults.<type>.<key>``, ``defaults.<key>``, or None (the schema's default)."""
        section = self.sections.get(kind.name)
        if section is not None and key in section.common.model_fields_set:
            return ("defaults", kind.name, key)
        if key in self.defaults.model_fields_set:
            return ("defaults", key)
        return None

    def own(self, kind: CheckType) -> dict[str, Any]:
        """The type's own keys ``defaults.<type>`` sets."""
        section = self.sections.get(kind.name)
        return section.own if section is not None else {}


def read_defaults(tree: Tree, raw: Any) -> Inheritance:
    """``defaults`` validated, and its per-type sections; issues recorded in ``tree``."""
    path: KeyPath = ("defaults",)
    if not isinstance(raw, dict):
        tree.issue(path, f"expected a mapping, got {show(raw)}")
        return Inheritance()
    for key in raw:
        if key not in _INHERITABLE and key not in REGISTRY:
            note = ", or a check type: " + ", ".join(sorted(REGISTRY))
            tree.issue((*path, key), unknown_key(key, _INHERITABLE, note))
    result = Inheritance(_inheritable(tree, raw, path))
    for name, section_raw in raw.items():
        if name in REGISTRY:
            section = _section(tree, REGISTRY[name], section_raw, (*path, name))
            if section is not None:
                result.sections[name] = section
    return result


def _section(tree: Tree, kind: CheckType, raw: Any, path: KeyPath) -> Section | None:
    """One ``defaults.<type>`` section: the type's own keys and the inheritable ones."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        tree.issue(path, f"expected a mapping of {kind.name} keys, got {show(raw)}")
        return None
    common = _inheritable(tree, raw, path)
    own = {k: v for k, v in raw.items() if k not in _INHERITABLE}
    # Required keys (an http url) belong to each service, not to a defaults section.
    allowed = [*kind.spec.model_fields, *_INHERITABLE]
    if validate(tree, kind.spec, own, path, allowed=allowed, partial=True) is None:
        own = _accepted_keys(kind.spec, own)
    return Section(common, own, raw)


def _inheritable(tree: Tree, raw: dict[str, Any], path: KeyPath) -> Defaults:
    """The inheritable keys of ``raw`` (``defaults`` or a type section), those with errors
    reported and left out."""
    given = {k: v for k, v in raw.items() if k in _INHERITABLE}
    level = validate(tree, Defaults, given, path) or _accepted(Defaults, given)
    if "locations" in level.model_fields_set:
        check_listed(tree, level.locations, (*path, "locations"))
    return level


def _accepted_keys(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``data`` that ``model`` accepts: those with errors dropped (missing aside)."""
    while True:
        try:
            model.model_validate(data)
        except ValidationError as exc:
            errors = [e for e in exc.errors() if e["type"] != "missing"]
            bad = {e["loc"][0] for e in errors if e["loc"]}
            if bad:
                data = {k: v for k, v in data.items() if k not in bad}
                continue
            if errors:
                return {}  # an error of the whole mapping: trust none of it
        return data


def _accepted(model: type[M], data: dict[str, Any]) -> M:
    """``model`` from the keys of ``data`` it accepts (``model`` has no required keys)."""
    return model.model_validate(_accepted_keys(model, data))
