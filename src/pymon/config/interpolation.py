"""``${VAR}`` in string values: the environment's value, ``${VAR:-default}``, ``$${``.

``${VAR:-default}`` takes the default when VAR is unset or empty; ``$${`` is a
literal ``${``. A reference to an unset variable without a default, or one that is
not a name, is a problem the loader reports at the value's key path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = ["Interpolated", "interpolate"]

_REFERENCE: Final = re.compile(r"\$\$\{|\$\{([^{}]*)\}|\$\{")
_VARIABLE: Final = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)


@dataclass(slots=True)
class Interpolated:
    """A string with its references replaced.

    ``from_env``: whether it names a variable (then messages show the text as written);
    ``problems``: what is wrong with its references, in order.
    """

    text: str
    from_env: bool = False
    problems: list[str] = field(default_factory=list)


def interpolate(text: str, env: Mapping[str, str]) -> Interpolated:
    """``text`` with ``${VAR}``, ``${VAR:-default}`` replaced and ``$${`` made ``${``."""
    out = Interpolated(text)
    if "$" not in text:
        return out

    def replace(m: re.Match[str]) -> str:
        if m[0] == "$${":
            return "${"
        ref = _VARIABLE.fullmatch(m[1] or "") if m[0] != "${" else None
        if ref is None:
            out.problems.append(
                f"bad reference {m[0]!r}: write ${{NAME}} or ${{NAME:-default}}, "
                "or $${ for a literal ${"
            )
            return m[0]
        out.from_env = True
        value = env.get(ref["name"])
        if ref["default"] is not None and not value:
            return ref["default"]
        if value is None:
            out.problems.append(f"environment variable {ref['name']!r} is not set")
            return m[0]
        return value

    out.text = _REFERENCE.sub(replace, text)
    return out
