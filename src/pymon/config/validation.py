"""Validating plain data with a model, pydantic's errors turned into config issues.

Each error becomes an issue at the key path the operator wrote (pydantic's union
member tags taken out), in plain words: ``expected an integer, got 'abc'``,
``unknown key (did you mean 'port'? ...)``, a validator's own text. The value in
a message is the one written in the file (see :meth:`~pymon.config.tree.Tree.got`).
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from pymon.config.messages import show, show_number, unknown_key
from pymon.config.tree import KeyPath, Tree

__all__ = ["model_keys", "validate"]

M = TypeVar("M", bound=BaseModel)

# pydantic error type -> what the value should have been.
_EXPECTED: Final[Mapping[str, str]] = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
# pydantic error type -> (template, context key); the bound comes from the error's ctx.
_BOUNDS: Final[Mapping[str, tuple[str, str]]] = {
    "greater_than": ("must be greater than {}", "gt"),
    "greater_than_equal": ("must be at least {}", "ge"),
    "less_than": ("must be less than {}", "lt"),
    "less_than_equal": ("must be at most {}", "le"),
    "too_short": ("must have at least {} items", "min_length"),
    "too_long": ("must have at most {} items", "max_length"),
    "string_too_long": ("must be at most {} characters long", "max_length"),
}


def validate(
    tree: Tree,
    model: type[M],
    data: dict[str, Any],
    path: KeyPath,
    *,
    allowed: Sequence[str] | None = None,
    partial: bool = False,
    order: Sequence[str] | None = None,
) -> M | None:
    """``model`` built from ``data`` found at ``path``, or None with issues recorded in ``tree``.

    ``allowed`` lists the keys an unknown top-level key is told about (a service
    takes more keys than its spec model has); ``partial`` ignores missing keys;
    ``order`` is the order to report the top-level keys in, if not the model's.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
    if order is not None:
        rank = {key: n for n, key in enumerate(order)}
        errors.sort(key=lambda e: rank.get(str(e["loc"][0]), len(rank)) if e["loc"] else len(rank))
    unions: dict[KeyPath, tuple[Any, list[tuple[KeyPath, ErrorDetails, Any]]]] = {}
    for err in errors:
        if partial and err["type"] == "missing" and len(err["loc"]) == 1:
            continue
        real, union, tp = _resolve(model, err["loc"])
        if union is None:
            where = (*path, *real)
            tree.issue(where, _message(tree, model, err, where, tp, allowed))
        else:
            at, union_tp = union
            unions.setdefault((*path, *real[:at]), (union_tp, []))[1].append((real, err, tp))
    for where, (union_tp, errs) in unions.items():
        # pydantic reports each member of a union it tried. A member that got
        # further than the union itself (a list with one bad item) is what the
        # operator meant; otherwise say what any member would have accepted.
        deep = [e for e in errs if len(path) + len(e[0]) > len(where)]
        for real, err, tp in deep:
            inside = (*path, *real)
            tree.issue(inside, _message(tree, model, err, inside, tp, allowed))
        # A member whose type fit but whose bound did not (quorum: 0 against 1 to 32,
        # or all) says more than what the members take.
        bounded = [e for e in errs if e[1]["type"] in _BOUNDS]
        if not deep and bounded:
            _, err, tp = bounded[0]
            tree.issue(where, _message(tree, model, err, where, tp, allowed))
        elif not deep:
            expected = " or ".join(dict.fromkeys(_expect(m) for m in _members(union_tp)))
            got = tree.got(where, errs[0][1]["input"])
            tree.issue(where, f"expected {expected}, got {got}")
    return None


def model_keys(tp: Any) -> list[str]:
    """The keys a model accepts, as written in config (``from``, not ``from_``)."""
    if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
        return []
    return [f.alias or n for n, f in tp.model_fields.items()]


def _message(
    tree: Tree,
    model: type[BaseModel],
    err: ErrorDetails,
    path: KeyPath,
    tp: Any,
    allowed: Sequence[str] | None,
) -> str:
    """A human message for one error of ``model`` at ``path`` (``tp``: the type there)."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    got = tree.got(path, err["input"])
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        if allowed is not None and len(err["loc"]) == 1:
            keys = list(allowed)
        else:
            keys = model_keys(_resolve(model, err["loc"][:-1])[2])
        return unknown_key(str(path[-1]), keys)
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])  # our own validators' text, without "Value error, "
    if kind == "union_tag_invalid":
        return f"type {ctx['tag']!r} is not one of {ctx['expected_tags']}"
    if kind == "union_tag_not_found":
        return f"{ctx['discriminator']} is required"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {got}"
    if kind == "literal_error" and get_origin(tp) is Literal:
        return f"expected {_expect(tp)}, got {got}"
    if kind in _BOUNDS:
        template, key = _BOUNDS[kind]
        return f"{template.format(show_number(ctx[key]))}, got {got}"
    if kind == "string_too_short":
        n = ctx["min_length"]
        return "must not be empty" if n == 1 else f"must be at least {n} characters long"
    if kind == "string_pattern_mismatch":
        return f"must match the pattern {ctx['pattern']}, got {got}"
    msg = err["msg"]
    return f"{msg[:1].lower()}{msg[1:]}, got {got}"


# -- walking an error's location through the model's types --------------------------


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _members(tp: Any) -> list[Any]:
    """The members of a union other than None (``[tp]`` if it is not a union)."""
    tp = _unwrap(tp)
    if get_origin(tp) in (Union, types.UnionType):
        return [_unwrap(a) for a in get_args(tp) if a is not type(None)]
    return [tp]


def _child(tp: Any, part: str | int) -> Any:
    """The type found at ``part`` inside a value of type ``tp`` (Any if unknown)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(str(part)) or next(
            (f for f in tp.model_fields.values() if f.alias == part), None
        )
        return field.annotation if field is not None else Any
    args = get_args(tp)
    if get_origin(tp) in (dict, Mapping) and len(args) == 2:
        return args[1]
    if get_origin(tp) in (list, tuple, set, frozenset, Sequence) and args:
        return args[0]
    return Any


def _member_named(members: list[Any], tag: str) -> Any:
    """The union member pydantic names ``tag`` in an error location (``list[str]``...)."""
    for member in members:
        origin = get_origin(member) or member
        name = "literal" if origin is Literal else getattr(origin, "__name__", "")
        if tag == name or tag.split("[", 1)[0].lower() == name.lower():
            return member
        # A discriminated union names the member by its ``type`` value instead.
        tagged = getattr(getattr(origin, "model_fields", {}).get("type"), "annotation", None)
        if get_origin(tagged) is Literal and tag in get_args(tagged):
            return member
    return Any


def _resolve(
    model: type[BaseModel], loc: tuple[str | int, ...]
) -> tuple[KeyPath, tuple[int, Any] | None, Any]:
    """Walk an error location through the model's types.

    Returns the key path without pydantic's union tags, where the first union is
    (index into that path, the union type) if there is one, and the type at the end.
    """
    tp: Any = model
    real: list[str | int] = []
    union: tuple[int, Any] | None = None
    for part in loc:
        members = _members(tp)
        if len(members) > 1:
            # pydantic names the member it tried before going into it.
            if union is None:
                union = (len(real), tp)
            tp = _member_named(members, str(part))
            continue
        real.append(part)
        tp = _child(members[0], part)
    return tuple(real), union, _unwrap(tp)


def _expect(tp: Any) -> str:
    """What a value of type ``tp`` looks like, for "expected ..." messages."""
    tp = _unwrap(tp)
    origin = get_origin(tp)
    if origin is Literal:
        values = [v if isinstance(v, str) else show(v) for v in get_args(tp)]
        return values[0] if len(values) == 1 else "one of " + ", ".join(values)
    if origin in (list, tuple, set, frozenset, Sequence):
        return "a list"
    if origin in (dict, Mapping) or (isinstance(tp, type) and issubclass(tp, BaseModel)):
        return "a mapping"
    simple = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    return simple.get(tp, getattr(tp, "__name__", str(tp)))
