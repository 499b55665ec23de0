"""YAML in, a validated immutable :class:`~pymon.config.schema.Config` out.

The steps, each feeding the next (each in its own module):

1. **Read** (``reading.py``): parse with ruamel.yaml's round-trip loader and read the
   tree into plain Python, noting the line of every key path and interpolating
   ``${VAR}`` in string values (``interpolation.py``).
2. **Include** (``includes.py``): merge in the files the top-level ``include`` globs
   match. Every key path remembers its file (``tree.py``), so an issue names the file
   and line the operator wrote, with the path as it is in that file.
3. **Validate** (``validation.py``) the top-level sections with the ``Config`` model,
   ``defaults`` and its per-type sections (``defaults.py``), then each service in two
   parts: its common keys with ``ServiceCommon`` and its type's own keys with the
   spec model from the check registry. Inheritance (``inheritance.py``) is applied
   after validation, so an error always points at the key the operator wrote, never
   at a merged copy.
4. **Cross-check** (``crosscheck.py``) the services and sections: unique names and
   unique fields, known ``depends_on`` without cycles, known channels, status pages
   that name known services and tags; each service's ``locations`` and ``quorum``
   against each other and its type (``placement.py``).
5. **Expand** (``expansion.py``): each service with ``locations`` is followed by its
   location checks, ``service@location``; ``Config.listed_services`` leaves them out.

The checksum (``checksum.py``) hashes every file's bytes except the ``node`` section.

Every problem becomes a :class:`~pymon.errors.ConfigIssue`; if there is any,
:class:`~pymon.errors.ConfigError` is raised once with all of them, sorted by line
(``messages.py`` says how they are worded). See ``docs/configuration.md`` for the
rules this implements.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from pymon.checks import REGISTRY
from pymon.checks.spec import CheckSpec
from pymon.config.checksum import checksum as config_checksum
from pymon.config.checksum import node_span
from pymon.config.crosscheck import (
    check_channels,
    check_reply_channel,
    check_services,
    check_status_pages,
)
from pymon.config.defaults import Inheritance, read_defaults
from pymon.config.expansion import expand
from pymon.config.includes import include
from pymon.config.inheritance import inherit
from pymon.config.messages import SECRET_KEYS, format_path, not_sections, show, unknown_key
from pymon.config.placement import place
from pymon.config.reading import decode, read, read_bytes
from pymon.config.schema import Config, Defaults, ServiceCommon, ServiceConfig
from pymon.config.tree import KeyPath, Tree
from pymon.config.validation import validate
from pymon.errors import ConfigError, ConfigIssue
from pymon.tuning import paused_gc

__all__ = [
    "DEMO_CONFIG",
    "SECRET_KEYS",
    "format_path",
    "load_config",
    "load_config_text",
    "load_demo_config",
]

DEMO_CONFIG: Final = Path(__file__).resolve().parent.parent / "demo.yaml"
"""The built-in demo config ``pymon run`` uses when there is no ``-c`` and no ``./pymon.yaml``."""

# Top-level keys the loader fills in itself; a config file may not set them.
_COMPUTED: Final = frozenset({"source", "checksum"})


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None) -> Config:
    """Load and validate the config file at ``path``.

    ``env`` is where ``${VAR}`` values come from (default: ``os.environ``). Raises
    :class:`ConfigError` listing every problem found, each with file, line and key path;
    an unreadable file is a ConfigError too.
    """
    source = str(path)
    data = read_bytes(source)
    if isinstance(data, ConfigIssue):
        raise ConfigError([data])
    text = decode(source, data)
    if isinstance(text, ConfigIssue):
        raise ConfigError([text])
    return _load(text, source, data, env, start=Path(path).parent, own=Path(path))


def load_config_text(
    text: str, source: str = "<string>", *, env: Mapping[str, str] | None = None
) -> Config:
    """Load and validate config from ``text``; ``source`` names it in issues and ``Config.source``.

    The checksum is that of ``text`` encoded as UTF-8, so it equals :func:`load_config`'s
    for a file holding the same text. Relative ``include`` globs start at the current
    directory.
    """
    return _load(text, source, text.encode(), env)


def load_demo_config() -> Config:
    """The built-in demo config (:data:`DEMO_CONFIG`): checks of this machine only."""
    return load_config(DEMO_CONFIG, env={})


def _load(
    text: str,
    source: str,
    data: bytes,
    env: Mapping[str, str] | None,
    *,
    start: Path | None = None,
    own: Path | None = None,
) -> Config:
    """One load of ``text`` (read from ``data``): ``own`` is the file itself, ``start``
    where relative include globs start."""
    tree = Tree(source)
    with paused_gc():
        config = _build(
            tree,
            text,
            data,
            os.environ if env is None else env,
            Path.cwd() if start is None else start,
            own,
        )
    if tree.issues or config is None:
        raise tree.error()
    return config


def _build(
    tree: Tree, text: str, data: bytes, env: Mapping[str, str], start: Path, own: Path | None
) -> Config | None:
    """The config in ``text``, or None if ``tree`` holds any issue (the steps are above)."""
    if not read(tree, text, env):
        return None
    # Before any included file adds its keys and lines (checksum.py).
    checksum = config_checksum(data, node_span(data, tree))
    if tree.data is None:
        # An empty file (or only comments) is a valid config with no services:
        # the daemon starts and serves its API, and services can be added by reload.
        tree.data = {}
    if not isinstance(tree.data, dict):
        tree.issue((), not_sections(tree.data))
        return None
    include(tree, tree.data.get("include"), env, start, own)
    if tree.included:
        # The checksum covers every file, in the order they were merged.
        digest = hashlib.sha256(checksum.encode())
        for name, file_digest in tree.included:
            digest.update(b"\0" + name.encode() + b"\0" + file_digest)
        checksum = digest.hexdigest()
    # A section whose children are all commented out reads as null: treat it as absent.
    top = {k: v for k, v in tree.data.items() if v is not None}
    known = [k for k in Config.model_fields if k not in _COMPUTED]
    for key in top:
        if key not in known:
            tree.issue((key,), unknown_key(key, known))
    settings = {k: v for k, v in top.items() if k in known and k not in ("defaults", "services")}
    base = validate(tree, Config, settings, ())
    inheritance = read_defaults(tree, top.get("defaults", {}))
    services = _services(tree, top.get("services", []), inheritance)
    if base is not None:
        check_channels(tree, top, set(base.notifications.channels))
        check_reply_channel(tree, base)
        raw_services = top.get("services")
        check_status_pages(
            tree,
            top.get("status_pages"),
            raw_services if isinstance(raw_services, list) else [],
            services,
        )
    if base is None or tree.issues:
        return None
    # Config.defaults keeps each type section as written, for display; services
    # already hold the effective values.
    extras = {name: section.raw for name, section in inheritance.sections.items()}
    return Config.model_validate(
        {
            **dict(base),
            "defaults": Defaults.model_validate({**dict(inheritance.defaults), **extras}),
            # Each service with locations followed by its location checks.
            "services": expand(services),
            "source": tree.source,
            "checksum": checksum,
        }
    )


def _services(tree: Tree, raw: Any, inheritance: Inheritance) -> tuple[ServiceConfig, ...]:
    if not isinstance(raw, list):
        tree.issue(("services",), f"expected a list of services, got {show(raw)}")
        return ()
    built = [_service(tree, item, ("services", i), inheritance) for i, item in enumerate(raw)]
    check_services(tree, raw)
    return tuple(s for s in built if s is not None)


def _service(tree: Tree, raw: Any, path: KeyPath, inheritance: Inheritance) -> ServiceConfig | None:
    """One service: its common keys and its type's own keys, each validated, then merged.

    The type's own keys are ``defaults.<type>``'s with the service's on top, per key;
    the inheritable ones are merged by their rules (``inheritance.py``).
    """
    if not isinstance(raw, dict):
        tree.issue(path, f"expected a mapping (a service: name, type, ...), got {show(raw)}")
        return None
    kind_name = raw.get("type")
    kind = REGISTRY.get(kind_name) if isinstance(kind_name, str) else None
    if isinstance(kind_name, str) and kind is None:
        # A missing or non-string type is reported by ServiceCommon's validation below.
        known = ", ".join(sorted(REGISTRY))
        tree.issue((*path, "type"), f"unknown check type {kind_name!r} (known: {known})")
    given = {k: v for k, v in raw.items() if k in _COMMON_KEYS}
    common = validate(tree, ServiceCommon, given, path, order=ServiceCommon.key_order)
    if kind is None:
        # Without a known type its own keys cannot be judged; saying "unknown key"
        # for each of them would only bury the real problem.
        return None
    own = {k: v for k, v in raw.items() if k not in _COMMON_KEYS}
    spec = validate(
        tree, kind.spec, {**inheritance.own(kind), **own}, path, allowed=_allowed(kind.spec)
    )
    if common is None or spec is None:
        return None
    # A model's __dict__ holds its fields (dict(model) is pydantic's slower iterator).
    service = ServiceConfig.model_validate(
        {**common.__dict__, **inherit(inheritance.inherited(kind), common), "check": spec}
    )
    if service.locations or "quorum" in raw:
        origins = (inheritance.origin(kind, "quorum"), inheritance.origin(kind, "locations"))
        return place(tree, raw, service, path, origins)
    return service


_COMMON_KEYS: Final = frozenset(ServiceCommon.key_order)


@functools.cache
def _allowed(spec: type[CheckSpec]) -> tuple[str, ...]:
    """The keys a service whose type has ``spec`` may have, as an unknown key is told them."""
    return (*spec.model_fields, *ServiceCommon.key_order)
