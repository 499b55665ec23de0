"""The ``apprise`` channel: one notice to every URL of the channel, through apprise.

apprise speaks Slack, Teams, Discord, Telegram, Matrix, ntfy, Gotify and many more;
the channel gives it the e-mail's subject as the title and the e-mail's text body
(the same templates, ``notify/templates/email/``) as the body.

apprise sends from threads of its own executor (its async API): never on pymon's
loop, and never in the loop's default executor, where pymon resolves names. Each
URL is its own apprise call, bounded by the channel's ``timeout`` (apprise's
connect and read timeouts are set to it too), so a URL that fails is reported by
name and retried alone: the URLs that took a notice are remembered (in memory,
for the last :data:`_REMEMBERED` notices) and a retry skips them. A failure's
reason is what apprise logged about that URL, cut to one line.

apprise URLs carry the services' tokens. pymon shows a URL only as its scheme and
its host when the host is a host name or an address (``json://127.0.0.1:8080``,
``ntfy://ntfy.example.org``), else as its scheme alone (``tgram://...``, whose
"host" is a bot token), and removes every part of the configured URLs from the
reasons it quotes. apprise's own log never reaches pymon's: it logs URLs whole.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from typing import Final

from apprise import Apprise, AppriseResult, NotifyFormat, NotifyType

from pymon.config.schema import AppriseChannel
from pymon.model import Notice, NoticeKind, Status
from pymon.notify.base import DeliveryError, NoticeContext
from pymon.notify.email import subject
from pymon.notify.templates import Templates
from pymon.text import one_line

__all__ = ["AppriseSender", "display"]

log = logging.getLogger("pymon.notify")
# apprise logs URLs it cannot use whole, tokens and all: its records stay its own
# (each call's log is still read from its result, below).
logging.getLogger("apprise").propagate = False

# Notices whose taken URLs are remembered, so a retry skips them.
_REMEMBERED = 1000
# Characters of apprise's words quoted in a reason.
_MAX_QUOTE = 200
# A part of a URL this long or longer is scrubbed from reasons (shorter ones are
# ports, paths like "hook" and the like: no secret is that short).
_SECRET_MIN = 6
_HOST = re.compile(
    r"localhost|\d{1,3}(\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]"
    r"|([A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*"
)
_PARTS = re.compile(r"[^/:@?&=#,+]+")
_TYPES: Final = {
    Status.OK: NotifyType.SUCCESS,
    Status.WARN: NotifyType.WARNING,
    Status.UNKNOWN: NotifyType.WARNING,
    Status.ERROR: NotifyType.FAILURE,
    Status.FAILED: NotifyType.FAILURE,
}


def display(url: str) -> str:
    """``url`` as fit to show: ``scheme://host[:port]`` when the host is a host name or
    an address, else ``scheme://...`` (some services put a token where the host goes)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "<URL without scheme>"
    scheme = one_line(scheme, 20)
    authority = rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]
    host, colon, port = authority.rpartition(":") if ":" in authority else (authority, "", "")
    if colon and not port.isdigit():
        host = authority  # not a port: a token with a colon (Telegram's bot tokens)
    if _HOST.fullmatch(host) is None:
        return f"{scheme}://..."
    return f"{scheme}://{host}{colon}{port}" if port.isdigit() else f"{scheme}://{host}"


class AppriseSender:
    """Delivers notices to one apprise channel's URLs."""

    def __init__(self, name: str, config: AppriseChannel, templates: Templates) -> None:
        self.name = name
        self.config = config
        self.templates = templates
        self._shown = [display(url) for url in config.urls]
        self._secrets = _secret_parts(config.urls, self._shown)
        self._taken: OrderedDict[str, set[int]] = OrderedDict()

    async def send(self, notice: Notice, ctx: NoticeContext) -> None:
        """Send ``notice`` to every URL that has not taken it yet; raise
        :class:`DeliveryError` naming each URL that failed and why."""
        title = subject(notice, ctx)
        # Rendering may read template files: off the loop, as the e-mail channel does.
        body = await asyncio.to_thread(
            self.templates.render, "email", "txt", notice=notice, ctx=ctx
        )
        taken = self._taken.setdefault(notice.key, set())
        self._taken.move_to_end(notice.key)
        while len(self._taken) > _REMEMBERED:
            self._taken.popitem(last=False)
        todo = [i for i in range(len(self.config.urls)) if i not in taken]
        kind = NotifyType.INFO if notice.kind in _INFO_KINDS else _TYPES.get(notice.status)
        outcomes = await asyncio.gather(
            *(self._notify(i, title, body, kind or NotifyType.INFO) for i in todo)
        )
        failures: list[str] = []
        for i, problem in zip(todo, outcomes, strict=True):
            if problem is None:
                taken.add(i)
            else:
                failures.append(f"{self._shown[i]}: {problem}")
        if failures:
            done = len(taken)
            raise DeliveryError(
                f"apprise {'; '.join(failures)}"
                + (f" ({done} of {len(self.config.urls)} URLs took it)" if done else "")
            )
        self._taken.pop(notice.key, None)
        log.debug("apprise %s: %s sent to %d URLs", self.name, notice.key, len(todo))

    async def close(self) -> None:
        """Nothing to release: each send makes its own apprise objects."""

    async def _notify(self, index: int, title: str, body: str, kind: NotifyType) -> str | None:
        """Send to the ``index``-th URL; None when it took the notice, else why not."""
        timeout = self.config.timeout
        service = Apprise.instantiate(self.config.urls[index])
        if service is None:  # validated with the config; a newer apprise may differ
            return "apprise cannot use this URL"
        # apprise's own per-request timeouts (4 s) would cut a slow service short of the
        # channel's timeout, or let it outlast it: make them the channel's.
        service.socket_connect_timeout = timeout
        service.socket_read_timeout = timeout
        notifier = Apprise()
        notifier.add(service)
        try:
            # The deadline is apprise's (it stops waiting for its thread); the guard
            # is a backstop in case it does not.
            async with asyncio.timeout(timeout + 1.0):
                result = await notifier.async_notify(
                    body=body,
                    title=title,
                    notify_type=kind,
                    body_format=NotifyFormat.TEXT,
                    timeout=timeout,
                )
        except TimeoutError:
            return f"no answer within {timeout:g}s"
        except Exception as exc:  # a plugin's crash: its words may hold the URL
            log.debug("apprise %s: %s failed", self.name, self._shown[index], exc_info=True)
            return self._scrub(f"{type(exc).__name__}: {exc}")
        if result:
            return None
        return self._reason(result)

    def _reason(self, result: AppriseResult) -> str:
        said = [e.message for e in result.logs() if e.level in {"WARNING", "ERROR", "CRITICAL"}]
        if not said:
            return f"apprise reports {result.status.name.lower()} and says no more"
        return self._scrub(" / ".join(dict.fromkeys(said[-2:])))

    def _scrub(self, text: str) -> str:
        for part in self._secrets:
            text = text.replace(part, "***")
        return one_line(text, _MAX_QUOTE)


# Notices about the incident rather than the service's state: told as information.
_INFO_KINDS = frozenset({NoticeKind.ACKNOWLEDGED, NoticeKind.UNACKNOWLEDGED})


def _secret_parts(urls: list[str], shown: list[str]) -> list[str]:
    """Every part of ``urls`` that may be a secret, longest first (so a token is
    scrubbed whole before any shorter part inside it)."""
    visible = {p for s in shown for p in _PARTS.findall(s.partition("://")[2])}
    parts = set(urls)
    for url in urls:
        rest = url.partition("://")[2]
        parts.update(p for p in _PARTS.findall(rest) if len(p) >= _SECRET_MIN)
    return sorted(parts - visible, key=len, reverse=True)
