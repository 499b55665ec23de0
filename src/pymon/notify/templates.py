"""The Jinja2 templates notices are written with: the shipped defaults, overridable per file.

A channel asks for ``render("email", "txt", notice=..., ctx=...)`` and gets the
first template that exists of::

    email/<check type>-<status>.txt.j2   e.g. email/http-ok.txt.j2
    email/<check type>.txt.j2            e.g. email/http.txt.j2
    email/<status>.txt.j2                e.g. email/ok.txt.j2
    email/default.txt.j2

looked up first in the operator's directory (``notifications.templates``), then in
the package. Dropping one file in that directory overrides just that case; a
user template may ``{% extends %}`` a shipped one (the loader finds the user's
copy of a name first, so extend a shipped layout such as ``email/_base.txt.j2``,
not the file being replaced). Names starting with ``_`` are building blocks, never
chosen directly.

Templates see ``notice`` and ``ctx`` (:class:`~pymon.notify.base.NoticeContext`),
``status`` (the notice's status name), ``duration`` (seconds from ``notice.since``
to ``notice.at``, None without an incident) and whatever the channel adds. Filters:
``utc`` (epoch seconds to ``2024-05-01T03:12:00Z``), ``duration`` (seconds to
``1h 5m``) and ``number`` (a metric, without float noise).

:meth:`Templates.check` reads the operator's directory to :data:`MAX_DEPTH` levels
and at most :data:`MAX_ENTRIES` entries, skipping hidden directories (``.git``),
and refuses the root directory: a mistyped ``templates: /`` must not walk the whole
filesystem before the daemon starts.
"""

from __future__ import annotations

import math
import os
import re
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import jinja2
import jinja2.meta

from pymon.config.schema import Config
from pymon.model import Notice
from pymon.notify.base import DeliveryError, NoticeContext

__all__ = [
    "MAX_DEPTH",
    "MAX_ENTRIES",
    "Templates",
    "format_duration",
    "format_number",
    "format_utc",
    "template_dir",
]

MAX_DEPTH: Final = 4
"""Directory levels below the templates directory that are read: the names looked up
are one level deep (``email/default.txt.j2``); deeper files may still be extended
or included, but are not checked ahead."""

MAX_ENTRIES: Final = 1_000
"""Files and directories read before giving up: a templates directory holds tens of
files, so far more means the setting points at the wrong place (``/home``)."""

# A check type becomes part of a template name; anything else (a path, a dot)
# must never reach the loader.
_SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9_]*")


def template_dir(config: Config) -> Path | None:
    """``notifications.templates``; a relative path is read from the config file's directory."""
    wanted = config.notifications.templates
    if wanted is None:
        return None
    path = Path(wanted).expanduser()
    if not path.is_absolute() and config.source:
        path = Path(config.source).parent / path
    return path


def format_utc(epoch: float | None) -> str:
    """``epoch`` seconds as ISO 8601 UTC to the second (``2024-05-01T03:12:00Z``)."""
    if epoch is None:
        return "unknown"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_duration(seconds: float | None) -> str:
    """A duration the way people say it: ``45s``, ``12m``, ``1h 5m``, ``3d 4h``."""
    if seconds is None:
        return "unknown"
    total = max(0, round(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {secs}s" if secs and minutes < 10 else f"{minutes}m"
    return f"{secs}s"


def format_number(value: float) -> str:
    """A metric value without float noise: ``200``, ``0.123``, ``1.5e+09``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


class Templates:
    """Finds and renders notice templates; an operator's directory wins over the defaults."""

    def __init__(self, user_dir: str | os.PathLike[str] | None = None) -> None:
        self.user_dir = None if user_dir is None else Path(user_dir)
        loaders: list[jinja2.BaseLoader] = []
        if self.user_dir is not None:
            loaders.append(jinja2.FileSystemLoader(self.user_dir))
        loaders.append(jinja2.PackageLoader("pymon.notify", "templates"))
        self._env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html", "htm", "html.j2", "htm.j2"),
                disabled_extensions=("txt", "txt.j2"),
                # Unknown kinds escape: a stray "&lt;" is better than injected markup.
                default=True,
            ),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self._env.filters.update(utc=format_utc, duration=format_duration, number=format_number)

    @staticmethod
    def candidates(channel_kind: str, ext: str, service_type: str, status: str) -> list[str]:
        """The template names tried for one notice, most specific first."""
        names = []
        if _SAFE_NAME.fullmatch(service_type):
            names += [
                f"{channel_kind}/{service_type}-{status}.{ext}.j2",
                f"{channel_kind}/{service_type}.{ext}.j2",
            ]
        return [*names, f"{channel_kind}/{status}.{ext}.j2", f"{channel_kind}/default.{ext}.j2"]

    def render(
        self,
        channel_kind: str,
        ext: str,
        *,
        notice: Notice,
        ctx: NoticeContext,
        **extra: Any,
    ) -> str:
        """Render the most specific template for ``notice`` on a channel of ``channel_kind``.

        Raises :class:`DeliveryError` (permanent: the same template fails the same
        way next time) naming the template file and line when a template is broken.
        """
        status = notice.status.value
        names = self.candidates(channel_kind, ext, ctx.service_type, status)
        duration = None if notice.since is None else notice.at - notice.since
        try:
            template = self._env.select_template(names)
        except jinja2.TemplatesNotFound as exc:
            raise DeliveryError(
                f"no {channel_kind} template: none of {', '.join(names)} exists",
                permanent=True,
            ) from exc
        except Exception as exc:  # a broken or unreadable file among the candidates
            raise DeliveryError(f"template {_locate(exc)}", permanent=True) from exc
        try:
            return template.render(
                notice=notice, ctx=ctx, status=status, duration=duration, **extra
            )
        except Exception as exc:  # any failure inside a template is the template's
            where = _locate(exc, template.filename or template.name or "?")
            raise DeliveryError(f"template {where}", permanent=True) from exc

    def check(self) -> list[str]:
        """Compile every template in the user directory; one ``file:line: problem`` each.

        Also reports a template that extends or includes a name that exists nowhere.
        Mistakes only visible with data (a misspelt variable) show at the first send.
        """
        if self.user_dir is None:
            return []
        if not self.user_dir.is_dir():
            return [f"{self.user_dir}: templates directory does not exist"]
        if self.user_dir.resolve() == Path(self.user_dir.resolve().anchor):
            return [
                f"{self.user_dir}: the root directory cannot be the templates directory "
                "(name the directory that holds email/)"
            ]
        names, errors = _template_names(self.user_dir)
        for name in names:
            path = self.user_dir / name
            try:
                source = path.read_text(encoding="utf-8")
                parsed = self._env.parse(source, name, str(path))
                self._env.compile(parsed, name, str(path))
            except UnicodeDecodeError as exc:
                errors.append(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})")
                continue
            except OSError as exc:
                errors.append(f"{path}: cannot read: {exc.strerror or exc}")
                continue
            except jinja2.TemplateSyntaxError as exc:
                errors.append(f"{path}:{exc.lineno}: {exc.message}")
                continue
            for ref in jinja2.meta.find_referenced_templates(parsed):
                if ref is None:
                    continue  # computed at render time; cannot be checked here
                try:
                    self._env.get_template(ref)
                except jinja2.TemplateNotFound:
                    errors.append(f"{path}: refers to template {ref!r}, which does not exist")
                except jinja2.TemplateSyntaxError:
                    pass  # reported with its own file
        return errors


def _template_names(root: Path) -> tuple[list[str], list[str]]:
    """The ``*.j2`` files under ``root`` (names relative to it, sorted), and the problems met.

    Reads :data:`MAX_DEPTH` levels and :data:`MAX_ENTRIES` entries at most; an entry
    that vanishes while read (a process's ``/proc`` directory) is skipped.
    """
    names: list[str] = []
    problems: list[str] = []
    read = 0
    pending = [(root, 0)]
    while pending:
        directory, depth = pending.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    read += 1
                    if read > MAX_ENTRIES:
                        return [], [
                            f"{root}: more than {MAX_ENTRIES:,} files and directories; "
                            "is this the templates directory?"
                        ]
                    _sort(entry, depth, pending, names, root)
        except FileNotFoundError:
            continue
        except OSError as exc:
            problems.append(f"{directory}: cannot read: {exc.strerror or exc}")
    return sorted(names), problems


def _sort(
    entry: os.DirEntry[str],
    depth: int,
    pending: list[tuple[Path, int]],
    names: list[str],
    root: Path,
) -> None:
    """Put ``entry`` in ``names`` if it is a template, in ``pending`` if a directory to read."""
    try:
        if entry.is_dir():
            if depth < MAX_DEPTH and not entry.name.startswith("."):
                pending.append((Path(entry.path), depth + 1))
        elif entry.name.endswith(".j2") and entry.is_file():
            names.append(Path(entry.path).relative_to(root).as_posix())
    except OSError:
        pass  # gone or unreadable since it was listed: not a template to check


def _locate(exc: BaseException, fallback: str = "?") -> str:
    """``file:line: what`` for an exception raised while loading or rendering a template."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"{exc.filename or exc.name}:{exc.lineno}: {exc.message}"
    if isinstance(exc, UnicodeDecodeError):
        return f"{fallback}: a template file is not UTF-8 ({exc.reason} at byte {exc.start})"
    what = str(exc) or type(exc).__name__
    # Jinja rewrites tracebacks so that template frames carry the template's own
    # file name and line; the innermost one is where it broke.
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2"):
            return f"{frame.filename}:{frame.lineno}: {what}"
    return f"{fallback}: {what}"
