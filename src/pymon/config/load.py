"""YAML in, a validated immutable :class:`~pymon.config.schema.Config` out.

The steps, each feeding the next:

1. **Parse** with ruamel.yaml's round-trip loader, which keeps the line of every
   mapping key and sequence item.
2. **Read** the tree into plain Python (dict, list, str, int, float, bool, None),
   interpolating ``${VAR}`` in string values and noting the line of every key path.
   Files named by the top-level ``include`` globs are read the same way and merged
   in: their ``services`` and ``maintenance`` lists are appended, any other section
   may be defined in one file only. Every key path remembers its file, so an issue
   names the file and line the operator wrote, with the path as it is in that file.
3. **Validate** the top-level sections with the ``Config`` model, ``defaults`` and
   its per-type sections (``defaults.http`` ...), then each service in two parts:
   its common keys with ``ServiceCommon`` and its type's own keys with the spec
   model from the check registry. Inheritance is applied after validation, so an
   error always points at the key the operator wrote, never at a merged copy.
4. **Cross-check** the services: unique names, known ``depends_on``, no cycles.

Every problem becomes a :class:`~pymon.errors.ConfigIssue`; if there is any,
:class:`~pymon.errors.ConfigError` is raised once with all of them, sorted by line.
See ``docs/configuration.md`` for the rules this implements.
"""

from __future__ import annotations

import datetime as dt
import difflib
import glob
import hashlib
import json
import os
import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import merge_attrib
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from pymon.checks import REGISTRY, CheckType
from pymon.config.inheritance import inherit
from pymon.config.schema import (
    CheckSpec,
    Config,
    Defaults,
    Inheritable,
    ServiceCommon,
    ServiceConfig,
)
from pymon.errors import ConfigError, ConfigIssue

__all__ = ["DEMO_CONFIG", "format_path", "load_config", "load_config_text", "load_demo_config"]

DEMO_CONFIG: Final = Path(__file__).resolve().parent.parent / "demo.yaml"
"""The built-in demo config ``pymon run`` uses when there is no ``-c`` and no ``./pymon.yaml``."""

KeyPath = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

# Top-level keys the loader fills in itself; a config file may not set them.
_COMPUTED: Final = frozenset({"source", "checksum"})
# Sections that included files add to instead of defining once.
_LISTS: Final = ("services", "maintenance")
# An alias-heavy file ("billion laughs") expands exponentially into plain data;
# this is far beyond any real config yet keeps memory bounded.
_MAX_NODES: Final = 1_000_000
_PLAIN_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")
_REFERENCE: Final = re.compile(r"\$\$\{|\$\{([^{}]*)\}|\$\{")
_VARIABLE: Final = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)

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


class _TooLarge(Exception):
    """The plain data would exceed ``_MAX_NODES``."""


#: Keys whose values never appear in an error message, whatever went wrong with them.
SECRET_KEYS = frozenset({"password", "token", "secret"})


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None) -> Config:
    """Load and validate the config file at ``path``.

    ``env`` is where ``${VAR}`` values come from (default: ``os.environ``). Raises
    :class:`ConfigError` listing every problem found, each with file, line and key path;
    an unreadable file is a ConfigError too.
    """
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue(source, None, "", f"cannot read: {exc.strerror or exc}")]
        ) from None
    try:
        # utf-8-sig: editors on Windows may start the file with a byte-order mark.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.start + 1].hex()
        raise ConfigError(
            [ConfigIssue(source, line, "", f"not UTF-8 text (byte 0x{bad})")]
        ) from None
    loader = _Loader(source, env, base=Path(path).parent, own=Path(path))
    return loader.load(text, hashlib.sha256(data).hexdigest())


def load_config_text(
    text: str, source: str = "<string>", *, env: Mapping[str, str] | None = None
) -> Config:
    """Load and validate config from ``text``; ``source`` names it in issues and ``Config.source``.

    The checksum is that of ``text`` encoded as UTF-8, so it equals :func:`load_config`'s
    for a file holding the same text. Relative ``include`` globs start at the current
    directory.
    """
    return _Loader(source, env).load(text, hashlib.sha256(text.encode()).hexdigest())


def load_demo_config() -> Config:
    """The built-in demo config (:data:`DEMO_CONFIG`): checks of this machine only."""
    return load_config(DEMO_CONFIG, env={})


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


class _Section:
    """A validated ``defaults.<type>`` section.

    ``defaults``: what services of the type inherit (``defaults`` with the section's
    common keys on top); ``own``: the type's own keys; ``raw``: the section as written.
    """

    def __init__(self, defaults: Defaults, own: dict[str, Any], raw: dict[str, Any]) -> None:
        self.defaults = defaults
        self.own = own
        self.raw = raw


class _Loader:
    """One load: the source, the plain data with its line map, and the issues found."""

    def __init__(
        self,
        source: str,
        env: Mapping[str, str] | None,
        *,
        base: Path | None = None,
        own: Path | None = None,
    ) -> None:
        self.source = source
        self.env: Mapping[str, str] = os.environ if env is None else env
        # Where relative include globs start, and the file itself (never included again).
        self.base = base if base is not None else Path.cwd()
        self.own = own
        self.lines: dict[KeyPath, int] = {}
        # Included files: the file of each list item (with its index in that file) and
        # of each other section they define; every other path is in ``source``.
        self.items: dict[tuple[str | int, str | int], tuple[str, int]] = {}
        self.sections: dict[str | int, str] = {}
        self.files: list[str] = [source]
        self.included: list[tuple[str, bytes]] = []
        # Strings that held a ${VAR}, as written: messages show these, not the value,
        # which may be a secret.
        self.written: dict[KeyPath, str] = {}
        self.data: Any = None
        self.issues: list[ConfigIssue] = []
        self._nodes = 0

    # -- the whole load -------------------------------------------------------------

    def load(self, text: str, checksum: str) -> Config:
        config = self._build(text, checksum)
        if self.issues or config is None:
            # A dict keeps the first of equal issues (a union can report one twice).
            unique = dict.fromkeys(self.issues)
            order = {name: n for n, name in enumerate(self.files)}
            raise ConfigError(
                sorted(
                    unique,
                    key=lambda i: (order.get(i.file, len(order)), i.line is None, i.line or 0),
                )
            )
        return config

    def _build(self, text: str, checksum: str) -> Config | None:
        if not self._read(text):
            return None
        if self.data is None:
            # An empty file (or only comments) is a valid config with no services:
            # the daemon starts and serves its API, and services can be added by reload.
            self.data = {}
        if not isinstance(self.data, dict):
            self._issue((), f"the top level must be a mapping of sections, got {_show(self.data)}")
            return None
        self._include(self.data.get("include"))
        if self.included:
            # The checksum covers every file, in the order they were merged.
            digest = hashlib.sha256(checksum.encode())
            for name, data in self.included:
                digest.update(b"\0" + name.encode() + b"\0" + hashlib.sha256(data).digest())
            checksum = digest.hexdigest()
        # A section whose children are all commented out reads as null: treat it as absent.
        top = {k: v for k, v in self.data.items() if v is not None}
        known = [k for k in Config.model_fields if k not in _COMPUTED]
        for key in top:
            if key not in known:
                self._issue((key,), _unknown_key(key, known))
        settings = {
            k: v for k, v in top.items() if k in known and k not in ("defaults", "services")
        }
        base = self._validate(Config, settings, ())
        defaults, sections = self._defaults(top.get("defaults", {}))
        services = self._services(top.get("services", []), defaults, sections)
        if base is not None:
            self._known_channels(top, set(base.notifications.channels))
            self._reply_channel(base)
        if base is None or self.issues:
            return None
        # Config.defaults keeps each type section as written, for display; services
        # already hold the effective values.
        extras = {name: section.raw for name, section in sections.items()}
        return Config.model_validate(
            {
                **dict(base),
                "defaults": Defaults.model_validate({**dict(defaults), **extras}),
                "services": services,
                "source": self.source,
                "checksum": checksum,
            }
        )

    # -- include --------------------------------------------------------------------

    def _include(self, raw: Any) -> None:
        """Merge in the files the ``include`` globs match, each glob's matches sorted.

        A glob that matches nothing is fine (an empty ``conf.d``); a plain path that
        does not exist is an error. The including file itself and a file matched twice
        are merged once. The list's own type errors are the Config model's to report.
        """
        if not isinstance(raw, list):
            return
        seen = {self.own.resolve()} if self.own is not None else set()
        for i, pattern in enumerate(raw):
            if not isinstance(pattern, str):
                continue
            if not pattern.strip():
                self._issue(("include", i), "must not be empty")
                continue
            full = str(self.base / os.path.expanduser(pattern))
            if any(c in pattern for c in "*?["):
                matches = sorted(glob.glob(full))
            elif Path(full).is_file():
                matches = [full]
            else:
                what = "is a directory" if Path(full).is_dir() else "no such file"
                self._issue(("include", i), f"{what}: {full}")
                continue
            for match in matches:
                resolved = Path(match).resolve()
                if resolved in seen or not resolved.is_file():
                    continue
                seen.add(resolved)
                self._merge(match)

    def _merge(self, name: str) -> None:
        """Read the included file ``name`` and merge its sections into ``self.data``."""
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            self.issues.append(ConfigIssue(name, None, "", f"cannot read: {exc.strerror or exc}"))
            return
        self.files.append(name)
        self.included.append((name, data))
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            bad = data[exc.start : exc.start + 1].hex()
            self.issues.append(ConfigIssue(name, line, "", f"not UTF-8 text (byte 0x{bad})"))
            return
        sub = _Loader(name, self.env)
        ok = sub._read(text)
        # Issues found while reading (bad YAML, an unset ${VAR}) already name the file.
        self.issues.extend(sub.issues)
        if not ok or sub.data is None:
            return
        if not isinstance(sub.data, dict):
            self.issues.append(
                ConfigIssue(
                    name,
                    1,
                    "",
                    f"the top level must be a mapping of sections, got {_show(sub.data)}",
                )
            )
            return
        for key, value in sub.data.items():
            if value is None:
                continue  # a section whose children are all commented out
            line = sub.lines[(key,)]
            if key == "include":
                self.issues.append(
                    ConfigIssue(name, line, key, "only the main config file may include others")
                )
            elif key in _LISTS:
                self._append(name, sub, key, value)
            elif self.data.get(key) is not None:
                first = self.sections.get(key, self.source)
                self.issues.append(
                    ConfigIssue(
                        name,
                        line,
                        key,
                        f"{key} is already defined at {first}:{self.lines.get((key,))}; "
                        f"only {' and '.join(_LISTS)} may be given in several files",
                    )
                )
            else:
                self.data[key] = value
                self.sections[key] = name
                self.lines[(key,)] = line
                self._adopt(sub, key, lambda path: path)

    def _append(self, name: str, sub: _Loader, key: str, value: Any) -> None:
        """Append the included list ``value`` (``services``, ``maintenance``) to the main one."""
        if not isinstance(value, list):
            what = "services" if key == "services" else "maintenance windows"
            self.issues.append(
                ConfigIssue(
                    name, sub.lines[(key,)], key, f"expected a list of {what}, got {_show(value)}"
                )
            )
            return
        merged = self.data.get(key)
        if merged is None:
            merged = self.data[key] = []
            self.lines[(key,)] = sub.lines[(key,)]
            self.sections[key] = name
        if not isinstance(merged, list):
            return  # the main file's own error about it is reported
        offset = len(merged)
        merged.extend(value)
        for i in range(len(value)):
            self.items[(key, offset + i)] = (name, i)

        def shift(path: KeyPath) -> KeyPath:
            index = path[1]
            assert isinstance(index, int)
            return (key, offset + index, *path[2:])

        self._adopt(sub, key, shift)

    def _adopt(self, sub: _Loader, key: str, move: Callable[[KeyPath], KeyPath]) -> None:
        """Take ``sub``'s lines and written values under ``key``, at their merged paths."""
        for path, line in sub.lines.items():
            if len(path) > 1 and path[0] == key:
                self.lines[move(path)] = line
        for path, text in sub.written.items():
            if len(path) > 1 and path[0] == key:
                self.written[move(path)] = text

    def _locate(self, path: KeyPath) -> tuple[str, KeyPath]:
        """The file ``path`` was written in, and the path as it is in that file."""
        if len(path) >= 2:
            origin = self.items.get((path[0], path[1]))
            if origin is not None:
                return origin[0], (path[0], origin[1], *path[2:])
        if path and path[0] in self.sections and path[0] not in _LISTS:
            return self.sections[path[0]], path
        return self.source, path

    def _place(self, path: KeyPath, near: KeyPath) -> str:
        """Where ``path`` is, for a message about ``near``: ``line N``, or ``FILE:N`` elsewhere."""
        file = self._locate(path)[0]
        line = self.lines.get(path)
        return f"line {line}" if file == self._locate(near)[0] else f"{file}:{line}"

    # -- YAML to plain data ---------------------------------------------------------

    def _read(self, text: str) -> bool:
        """Parse ``text`` into ``self.data``; False (with an issue) if it is not usable YAML."""
        line: int | None = None
        try:
            self.data = self._plain(YAML(typ="rt").load(text), (), 1)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            message = "invalid YAML: " + ", ".join(str(p) for p in (exc.context, exc.problem) if p)
        except YAMLError as exc:
            message = f"invalid YAML: {exc}"
        except RecursionError:
            message = "invalid YAML: nested too deeply"
        except _TooLarge:
            message = f"the config expands to more than {_MAX_NODES:,} values (aliases?)"
        else:
            return True
        self.issues.append(ConfigIssue(self.source, line, "", message))
        return False

    def _plain(self, node: Any, path: KeyPath, line: int) -> Any:
        """``node`` as plain Python; records the line of each key and item beneath it."""
        self._nodes += 1
        if self._nodes > _MAX_NODES:
            raise _TooLarge
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                name = _key_text(key)
                key_line = _key_line(node, key, line)
                self.lines[(*path, name)] = key_line
                out[name] = self._plain(value, (*path, name), key_line)
            return out
        if isinstance(node, list):
            items: list[Any] = []
            for i, value in enumerate(node):
                item_line = _item_line(node, i, line)
                self.lines[(*path, i)] = item_line
                items.append(self._plain(value, (*path, i), item_line))
            return items
        if isinstance(node, str):
            return self._interpolate(str(node), path)
        if isinstance(node, ScalarBoolean | bool):  # ScalarBoolean (an anchored bool) is an int
            return bool(node)
        if isinstance(node, int):
            return int(node)
        if isinstance(node, float):
            return float(node)
        if isinstance(node, dt.date):  # also datetime; the models want text, as written
            return node.isoformat()
        return node

    def _interpolate(self, text: str, path: KeyPath) -> str:
        """``text`` with ``${VAR}``, ``${VAR:-default}`` replaced and ``$${`` made ``${``."""

        def replace(m: re.Match[str]) -> str:
            if m[0] == "$${":
                return "${"
            ref = _VARIABLE.fullmatch(m[1] or "") if m[0] != "${" else None
            if ref is None:
                self._issue(
                    path,
                    f"bad reference {m[0]!r}: write ${{NAME}} or ${{NAME:-default}}, "
                    "or $${ for a literal ${",
                )
                return m[0]
            self.written[path] = text
            value = self.env.get(ref["name"])
            if ref["default"] is not None and not value:
                return ref["default"]
            if value is None:
                self._issue(path, f"environment variable {ref['name']!r} is not set")
                return m[0]
            return value

        return _REFERENCE.sub(replace, text) if "$" in text else text

    # -- defaults -------------------------------------------------------------------

    def _defaults(self, raw: Any) -> tuple[Defaults, dict[str, _Section]]:
        """``defaults`` validated, and its per-type sections.

        A key with an error is reported here, once, and left out of what services
        inherit, so that the same mistake is not reported again for every service;
        the keys without errors are still inherited, so that they cause no more.
        """
        path: KeyPath = ("defaults",)
        if not isinstance(raw, dict):
            self._issue(path, f"expected a mapping, got {_show(raw)}")
            return Defaults(), {}
        fields = list(Inheritable.model_fields)
        for key in raw:
            if key not in fields and key not in REGISTRY:
                self._issue((*path, key), _unknown_key(key, fields, _types_note()))
        own = {k: v for k, v in raw.items() if k in fields}
        defaults = self._validate(Defaults, own, path) or _accepted(Defaults, own)
        sections: dict[str, _Section] = {}
        for name, section_raw in raw.items():
            if name in REGISTRY:
                section = self._section(REGISTRY[name], section_raw, (*path, name), defaults)
                if section is not None:
                    sections[name] = section
        return defaults, sections

    def _section(
        self, kind: CheckType, raw: Any, path: KeyPath, defaults: Defaults
    ) -> _Section | None:
        """One ``defaults.<type>`` section: the type's own keys and the inheritable ones."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self._issue(path, f"expected a mapping of {kind.name} keys, got {_show(raw)}")
            return None
        inheritable = list(Inheritable.model_fields)
        common = {k: v for k, v in raw.items() if k in inheritable}
        own = {k: v for k, v in raw.items() if k not in inheritable}
        section_defaults = self._validate(Defaults, common, path) or _accepted(Defaults, common)
        # Required keys (an http url) belong to each service, not to a defaults section.
        allowed = [*kind.spec.model_fields, *inheritable]
        if self._validate(kind.spec, own, path, allowed=allowed, partial=True) is None:
            own = _accepted_keys(kind.spec, own)
        return _Section(
            Defaults.model_validate(inherit(dict(defaults), section_defaults)), own, raw
        )

    # -- services -------------------------------------------------------------------

    def _services(
        self, raw: Any, defaults: Defaults, sections: Mapping[str, _Section]
    ) -> tuple[ServiceConfig, ...]:
        if not isinstance(raw, list):
            self._issue(("services",), f"expected a list of services, got {_show(raw)}")
            return ()
        built = [
            self._service(item, ("services", i), defaults, sections) for i, item in enumerate(raw)
        ]
        self._cross_check(raw)
        return tuple(s for s in built if s is not None)

    def _service(
        self, raw: Any, path: KeyPath, defaults: Defaults, sections: Mapping[str, _Section]
    ) -> ServiceConfig | None:
        if not isinstance(raw, dict):
            self._issue(path, f"expected a mapping (a service: name, type, ...), got {_show(raw)}")
            return None
        common_keys = ServiceCommon.key_order
        kind_name = raw.get("type")
        kind = REGISTRY.get(kind_name) if isinstance(kind_name, str) else None
        if isinstance(kind_name, str) and kind is None:
            # A missing or non-string type is reported by ServiceCommon's validation below.
            known = ", ".join(sorted(REGISTRY))
            self._issue((*path, "type"), f"unknown check type {kind_name!r} (known: {known})")
        given = {k: v for k, v in raw.items() if k in common_keys}
        common = self._validate(ServiceCommon, given, path, order=common_keys)
        if kind is None:
            # Without a known type its own keys cannot be judged; saying "unknown key"
            # for each of them would only bury the real problem.
            return None
        section = sections.get(kind.name)
        own = {k: v for k, v in raw.items() if k not in common_keys}
        spec = self._validate(
            kind.spec,
            {**(section.own if section else {}), **own},
            path,
            allowed=[*kind.spec.model_fields, *common_keys],
        )
        if common is None or spec is None:
            return None
        return _effective(common, spec, kind, section.defaults if section else defaults)

    def _cross_check(self, raw: list[Any]) -> None:
        """Unique names and unique fields, known ``depends_on``, no dependency cycle.

        Reads the raw services, so that a service with some other error still counts:
        its dependants are not told it is unknown.
        """
        first: dict[str, int] = {}
        for i, item in enumerate(raw):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str):
                continue
            if name in first:
                where = self._place(("services", first[name], "name"), ("services", i))
                self._issue(
                    ("services", i, "name"),
                    f"duplicate service name {name!r} (first defined at {where})",
                )
            else:
                first[name] = i
        self._unique_fields(raw)
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
                    self._issue(path, _unknown_name(dep, first))
        for cycle in _cycles({n: [d for d, _ in edges] for n, edges in graph.items()}, first):
            path = next(p for d, p in graph[cycle[0]] if d == cycle[1])
            self._issue(path, "dependency cycle: " + " -> ".join(cycle))

    def _known_channels(self, top: dict[str, Any], known: set[str]) -> None:
        """Every channel a route, the escalation, ``defaults`` or a service names exists."""
        places: list[tuple[KeyPath, Any]] = []
        notifications = top.get("notifications")
        if isinstance(notifications, dict):
            places.append((("notifications", "escalation"), notifications.get("escalation")))
            routes = notifications.get("routes")
            for i, route in enumerate(routes if isinstance(routes, list) else []):
                if isinstance(route, dict):
                    places.append(
                        (("notifications", "routes", i, "channels"), route.get("channels"))
                    )
        defaults = top.get("defaults")
        if isinstance(defaults, dict):
            places.append((("defaults", "notify"), defaults.get("notify")))
        services = top.get("services")
        for i, item in enumerate(services if isinstance(services, list) else []):
            if isinstance(item, dict):
                places.append((("services", i, "notify"), item.get("notify")))
        reported = {(issue.file, issue.path) for issue in self.issues}
        for path, names in places:
            for k, name in enumerate(names if isinstance(names, list) else []):
                where = (*path, k)
                file, shown = self._locate(where)
                # A name already reported (e.g. an unset ${VAR}) is not unknown on top.
                if (
                    isinstance(name, str)
                    and name not in known
                    and (file, format_path(shown)) not in reported
                ):
                    self._issue(where, _unknown_channel(name, known))

    def _reply_channel(self, base: Config) -> None:
        """Confirmations of acknowledgements go out through an e-mail channel."""
        acks = base.acknowledgements
        if acks.listen is None or not acks.confirm:
            return
        emails = [n for n, c in base.notifications.channels.items() if c.type == "email"]
        if acks.reply_channel is None:
            if not emails:
                self._issue(
                    ("acknowledgements", "confirm"),
                    "confirmations need an e-mail channel under notifications.channels "
                    "(or set confirm: false)",
                )
        elif acks.reply_channel not in emails:
            self._issue(
                ("acknowledgements", "reply_channel"),
                f"{acks.reply_channel!r} is not an e-mail channel (e-mail channels: "
                + (", ".join(emails) or "none")
                + ")",
            )

    def _unique_fields(self, raw: list[Any]) -> None:
        """No two services of a type share a value of a key its spec declares unique.

        A heartbeat's push must reach exactly one service. The value may be a secret
        (a token): the message never shows it.
        """
        owner: dict[tuple[str, str, str | int | float], int] = {}
        for i, item in enumerate(raw):
            kind_name = item.get("type") if isinstance(item, dict) else None
            kind = REGISTRY.get(kind_name) if isinstance(kind_name, str) else None
            if kind is None:
                continue
            for key in kind.spec.unique_fields:
                value = item.get(key)
                if not isinstance(value, str | int | float):
                    continue  # missing, or the wrong type, which validation reports
                first = owner.setdefault((kind.name, key, value), i)
                if first != i:
                    where = self._place(("services", first, key), ("services", i))
                    self._issue(
                        ("services", i, key),
                        f"{key} already used by service {raw[first].get('name')!r}"
                        f" ({where}); each {kind.name} needs its own",
                    )

    # -- validation and issues ------------------------------------------------------

    def _validate(
        self,
        model: type[M],
        data: dict[str, Any],
        path: KeyPath,
        *,
        allowed: Sequence[str] | None = None,
        partial: bool = False,
        order: Sequence[str] | None = None,
    ) -> M | None:
        """``model`` built from ``data`` found at ``path``, or None with issues recorded.

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
            errors.sort(
                key=lambda e: rank.get(str(e["loc"][0]), len(rank)) if e["loc"] else len(rank)
            )
        unions: dict[KeyPath, tuple[Any, list[tuple[KeyPath, ErrorDetails, Any]]]] = {}
        for err in errors:
            if partial and err["type"] == "missing" and len(err["loc"]) == 1:
                continue
            real, union, tp = _resolve(model, err["loc"])
            if union is None:
                self._issue((*path, *real), self._message(model, err, (*path, *real), tp, allowed))
            else:
                at, union_tp = union
                unions.setdefault((*path, *real[:at]), (union_tp, []))[1].append((real, err, tp))
        for where, (union_tp, errs) in unions.items():
            # pydantic reports each member of a union it tried. A member that got
            # further than the union itself (a list with one bad item) is what the
            # operator meant; otherwise say what any member would have accepted.
            deep = [e for e in errs if len(path) + len(e[0]) > len(where)]
            for real, err, tp in deep:
                self._issue((*path, *real), self._message(model, err, (*path, *real), tp, allowed))
            if not deep:
                expected = " or ".join(dict.fromkeys(_expect(m) for m in _members(union_tp)))
                got = self._got(where, errs[0][1]["input"])
                self._issue(where, f"expected {expected}, got {got}")
        return None

    def _message(
        self,
        model: type[BaseModel],
        err: ErrorDetails,
        path: KeyPath,
        tp: Any,
        allowed: Sequence[str] | None,
    ) -> str:
        """A human message for one error of ``model`` at ``path`` (``tp``: the type there)."""
        kind = err["type"]
        ctx = err.get("ctx") or {}
        got = self._got(path, err["input"])
        if kind == "missing":
            return "field required"
        if kind == "extra_forbidden":
            if allowed is not None and len(err["loc"]) == 1:
                keys = list(allowed)
            else:
                keys = _fields(_resolve(model, err["loc"][:-1])[2])
            return _unknown_key(str(path[-1]), keys)
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
            return f"{template.format(_number(ctx[key]))}, got {got}"
        if kind == "string_too_short":
            n = ctx["min_length"]
            return "must not be empty" if n == 1 else f"must be at least {n} characters long"
        if kind == "string_pattern_mismatch":
            return f"must match the pattern {ctx['pattern']}, got {got}"
        msg = err["msg"]
        return f"{msg[:1].lower()}{msg[1:]}, got {got}"

    def _got(self, path: KeyPath, fallback: Any) -> str:
        """The value at ``path`` for a message: as written in the file, else ``fallback``.

        Showing what the operator wrote (``'0s'``, ``'${PORT}'``) rather than what the
        model saw (``0.0``, the port's value) points at the text to fix and keeps
        secrets from the environment out of messages and logs.
        """
        if path and path[-1] in SECRET_KEYS:
            return "a value that is not shown (a secret)"
        if path in self.written:
            return f"{_show(self.written[path])} (from the environment)"
        return _show(self._value(path, fallback))

    def _value(self, path: KeyPath, fallback: Any) -> Any:
        """The value at ``path`` in the file's data (else ``fallback``, e.g. inherited)."""
        node = self.data
        for part in path:
            if isinstance(part, str):
                found = isinstance(node, dict) and part in node
            else:
                found = isinstance(node, list) and 0 <= part < len(node)
            if not found:
                return fallback
            node = node[part]
        return node

    def _issue(self, path: KeyPath, message: str) -> None:
        """Record an issue at ``path``, on the line of its deepest key present in the file."""
        line: int | None = None
        for n in range(len(path), 0, -1):
            if path[:n] in self.lines:
                line = self.lines[path[:n]]
                break
        else:
            if self.data is not None:
                line = 1
        file, shown = self._locate(path)
        self.issues.append(ConfigIssue(file, line, format_path(shown), message))


# -- inheritance ------------------------------------------------------------------


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


def _effective(
    common: ServiceCommon, spec: CheckSpec, kind: CheckType, defaults: Defaults
) -> ServiceConfig:
    """A service as it runs: what it inherits, with its own keys laid over by their rules.

    The weakest level is the schema's defaults with the check type's own thresholds.
    """
    built_in = {**dict(Inheritable()), "thresholds": dict(kind.thresholds)}
    inherited = inherit(built_in, defaults)
    return ServiceConfig.model_validate(
        {**dict(common), **inherit(inherited, common), "check": spec}
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


# -- reading ruamel's tree --------------------------------------------------------


def _key_text(key: Any) -> str:
    if isinstance(key, ScalarBoolean | bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


def _key_line(node: Any, key: Any, fallback: int) -> int:
    """1-based line of ``key`` in the mapping ``node`` (or in a map merged in with ``<<``)."""
    for mapping in (node, *getattr(node, merge_attrib, ())):
        pos = getattr(getattr(mapping, "lc", None), "data", {}).get(key)
        if pos is not None:
            return int(pos[0]) + 1
    return fallback


def _item_line(node: Any, index: int, fallback: int) -> int:
    pos = getattr(getattr(node, "lc", None), "data", {}).get(index)
    return int(pos[0]) + 1 if pos is not None else fallback


# -- types and messages -----------------------------------------------------------


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


def _fields(tp: Any) -> list[str]:
    """The keys a model accepts, as written in config (``from``, not ``from_``)."""
    if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
        return []
    return [f.alias or n for n, f in tp.model_fields.items()]


def _expect(tp: Any) -> str:
    """What a value of type ``tp`` looks like, for "expected ..." messages."""
    tp = _unwrap(tp)
    origin = get_origin(tp)
    if origin is Literal:
        values = [v if isinstance(v, str) else _show(v) for v in get_args(tp)]
        return values[0] if len(values) == 1 else "one of " + ", ".join(values)
    if origin in (list, tuple, set, frozenset, Sequence):
        return "a list"
    if origin in (dict, Mapping) or (isinstance(tp, type) and issubclass(tp, BaseModel)):
        return "a mapping"
    simple = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    return simple.get(tp, getattr(tp, "__name__", str(tp)))


def _show(value: Any) -> str:
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


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _unknown_key(key: str, allowed: list[str], note: str = "") -> str:
    if not allowed:
        return "unknown key"
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key ({hint}allowed: {', '.join(allowed)}{note})"


def _unknown_channel(name: str, known: Iterable[str]) -> str:
    names = ", ".join(sorted(known)) or "none"
    return f"unknown channel {name!r} (channels under notifications.channels: {names})"


def _unknown_name(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown service {name!r}{hint}"


def _types_note() -> str:
    return ", or a check type: " + ", ".join(sorted(REGISTRY))
