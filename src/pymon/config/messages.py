"""The words of config issues: key paths as written, values as shown, the usual texts.

An issue reads ``FILE:LINE: key.path: what is wrong`` (``errors.ConfigIssue``); this
module says how a path and a value are written in it. Values under
:data:`SECRET_KEYS` are never shown.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, Final

__all__ = [
    "SECRET_KEYS",
    "format_path",
    "is_secret",
    "not_sections",
    "show",
    "show_number",
    "unknown_channel",
    "unknown_key",
    "unknown_service",
]

#: Keys whose values never appear in an error message, whatever went wrong with them.
#: ``urls`` are apprise's: their paths carry the services' tokens.
SECRET_KEYS = frozenset({"password", "token", "secret", "routing_key", "api_key", "urls"})

_PLAIN_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")


def format_path(path: Iterable[str | int]) -> str:
    """A key path as written in issues: ``services[2].thresholds.status_code.ok``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


def is_secret(path: Sequence[str | int]) -> bool:
    """Whether the value at ``path`` is a secret: under a :data:`SECRET_KEYS` key, or an
    item of a list under one (``urls[2]``)."""
    if path and isinstance(path[-1], int):
        path = path[:-1]
    return bool(path) and path[-1] in SECRET_KEYS


def show(value: Any) -> str:
    """``value`` as the operator wrote it in YAML, short."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def show_number(value: Any) -> str:
    """A bound in a message: ``0.5``, ``1``, not ``1.0``."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def not_sections(data: Any) -> str:
    """The message for a file whose top level is not a mapping."""
    return f"the top level must be a mapping of sections, got {show(data)}"


def unknown_key(key: str, allowed: list[str], note: str = "") -> str:
    """``key`` is not one of ``allowed``: name the closest, then all (``note`` after them)."""
    if not allowed:
        return "unknown key"
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key ({hint}allowed: {', '.join(allowed)}{note})"


def unknown_channel(name: str, known: Iterable[str]) -> str:
    names = ", ".join(sorted(known)) or "none"
    return f"unknown channel {name!r} (channels under notifications.channels: {names})"


def unknown_service(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown service {name!r}{hint}"
