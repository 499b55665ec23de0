"""How a service inherits: the merge rules, and the fold of one level onto another.

An inheritable field of the schema (``schema.Inheritable``) carries its rule as
``Annotated`` metadata, so each key is written once, with how it combines::

    interval: Annotated[Duration, REPLACE] = Field(default=60.0, gt=0)

:func:`inherit` lays a level (``defaults``, ``defaults.<type>``, a service) over
what the weaker levels gave: a key the level does not set is inherited as it is;
a key it sets is combined with the inherited value by the field's rule. See
docs/configuration.md, Inheritance.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel

__all__ = [
    "PER_ENTRY",
    "PER_FIELD",
    "REPLACE",
    "REPLACE_UNLESS_NULL",
    "UNION",
    "Merge",
    "inherit",
    "rules",
]


@dataclass(frozen=True, slots=True)
class Merge:
    """A merge rule: ``combine(inherited, own)`` is the value of a key a level sets."""

    name: str
    combine: Callable[[Any, Any], Any]


def _per_field(inherited: BaseModel, own: BaseModel) -> BaseModel:
    return type(inherited).model_validate(
        {**dict(inherited), **{k: getattr(own, k) for k in own.model_fields_set}}
    )


REPLACE: Final = Merge("replace", lambda inherited, own: own)
"""The level's value wins, null too (``retry_interval: null`` drops an inherited one)."""

REPLACE_UNLESS_NULL: Final = Merge(
    "replace unless null", lambda inherited, own: inherited if own is None else own
)
"""The level's value wins unless it is null, which means "not set" (``notify``)."""

PER_ENTRY: Final = Merge("per entry", lambda inherited, own: {**inherited, **own})
"""A mapping merged per key, each entry replaced whole (``thresholds``, per metric)."""

PER_FIELD: Final = Merge("per field", _per_field)
"""A model merged per field the level sets (``flap_guard``, ``flap_detection``)."""

UNION: Final = Merge("union", lambda inherited, own: list(dict.fromkeys([*own, *inherited])))
"""A list: the level's items first, then the inherited ones, repeats dropped (``tags``)."""


@functools.cache
def rules(model: type[BaseModel]) -> Mapping[str, Merge]:
    """The inheritable fields of ``model``, each with its merge rule."""
    return {
        name: rule
        for name, field in model.model_fields.items()
        for rule in field.metadata
        if isinstance(rule, Merge)
    }


def inherit(inherited: Mapping[str, Any], level: BaseModel) -> dict[str, Any]:
    """``inherited`` (every inheritable key) with the keys ``level`` sets laid over it."""
    merged = dict(inherited)
    for name, rule in rules(type(level)).items():
        if name in level.model_fields_set:
            merged[name] = rule.combine(inherited[name], getattr(level, name))
    return merged
