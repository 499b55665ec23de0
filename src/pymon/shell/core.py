"""The shell's commands carried out: :class:`Shell` reads a command line (with
:mod:`pymon.shell.commands`), runs it against the daemon's JSON API through a
:class:`~pymon.client.Client` and writes the answer to a rich ``Console`` (shown by
:mod:`pymon.shell.render`). It never needs a terminal, so scripts and tests drive it
directly.

Every expected failure (daemon down, refused credentials, unknown service, bad usage)
is one line on the error console, never a traceback.
"""

from __future__ import annotations

import shlex
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from pymon.client import Client, ClientError
from pymon.durations import parse_duration
from pymon.engine.maintenance import literal_pattern
from pymon.shell import render
from pymon.shell.commands import (
    COMMANDS,
    CommandFailed,
    UsageError,
    count,
    lookup,
    parse_line,
    unknown_command,
)

__all__ = ["CHECK_WAIT", "STREAM_RETRY", "Shell"]

CHECK_WAIT = 30.0  # seconds `check` waits for the result before leaving it queued
STREAM_RETRY = 2.0  # seconds before `watch` reconnects (the stream's own retry delay)


class Shell:
    """Parses and runs shell command lines against the daemon behind ``client``.

    Output goes to ``console``, failures to ``errors`` (default: the same console).
    ``author`` is who acknowledges when the daemon lets the caller say (loopback).
    ``names`` holds the service names for completion; ``finished`` turns true on quit.
    """

    def __init__(
        self,
        client: Client,
        console: Console,
        *,
        errors: Console | None = None,
        author: str = "shell",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.console = console
        self.errors = errors or console
        self.author = author
        self.names: list[str] = []
        self.finished = False
        self._clock = clock
        self._handlers: dict[str, Callable[[list[str]], None]] = {
            "status": self._status,
            "show": self._show,
            "history": self._history,
            "events": self._events,
            "ack": self._ack,
            "unack": self._unack,
            "maint": self._maint,
            "check": self._check,
            "nodes": self._nodes,
            "reload": self._reload,
            "watch": self._watch,
            "help": self._help,
            "quit": self._quit,
        }

    def run_line(self, line: str) -> bool:
        """Run one command line; True when it succeeded (an empty line does)."""
        try:
            parsed = parse_line(line)
            if parsed is None:
                return True
            name, args = parsed
            self._handlers[name](args)
        except (UsageError, CommandFailed) as exc:
            self.warn(str(exc))
            return False
        except ClientError as exc:
            self.warn(render.explain(exc))
            return False
        except KeyboardInterrupt:
            self.warn("interrupted")
            return False
        return True

    def refresh_names(self) -> ClientError | None:
        """Fetch the service names for completion; on failure keep the old ones and
        answer the error."""
        try:
            self.names = [str(row.get("name", "")) for row in self.client.services()]
        except ClientError as exc:
            return exc
        return None

    # -- output ------------------------------------------------------------------

    def say(self, *parts: str | tuple[str, str]) -> None:
        """Write a line of plain text (strings, or (text, style) pairs)."""
        self.console.print(render.styled(*parts), soft_wrap=True)

    def warn(self, message: str) -> None:
        """Write a failure (or warning) line to the error console."""
        self.errors.print(Text(render.clean(message), style="red"), soft_wrap=True)

    # -- commands ----------------------------------------------------------------

    def _status(self, args: list[str]) -> None:
        wanted = " ".join(args).strip()
        if wanted.lower() in render.STATUSES:
            rows = self.client.services(status=wanted.lower())
        else:
            rows = self.client.services(text=wanted or None)
        if not wanted:
            self.names = [str(row.get("name", "")) for row in rows]
        if not rows:
            self.say(f"no service matches {wanted!r}" if wanted else "no services configured")
            return
        now = self._clock()
        table = render.table(self.console, "name", "status", "flags", "message", "last check")
        for row in rows:
            status = str(row.get("status", "?"))
            table.add_row(
                Text(render.clean(row.get("name", ""))),
                Text(status, style=render.STATUS_STYLES.get(status, "")),
                Text(", ".join(render.flags(row))),
                Text(render.clean(row.get("message", ""))),
                Text(render.ago(row.get("last_check"), now)),
            )
        self.console.print(table)
        counted = Counter(str(row.get("status", "?")) for row in rows)
        summary = ", ".join(f"{counted[s]} {s}" for s in (*render.STATUSES, "?") if counted[s])
        self.say(f"{len(rows)} service{'s' if len(rows) != 1 else ''}: {summary}")

    def _show(self, args: list[str]) -> None:
        row = self.client.service(args[0])
        now = self._clock()
        status = str(row.get("status", "?"))
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column("key", style="bold")
        table.add_column("value", overflow="fold")
        hardness = "confirmed" if row.get("confirmed") else "not confirmed yet"
        facts: list[tuple[str, Text]] = [
            ("name", Text(render.clean(row.get("name", "")))),
            ("type", Text(render.clean(row.get("type", "")))),
            (
                "status",
                render.styled(
                    (status, render.STATUS_STYLES.get(status, "")),
                    f" ({hardness}, {row.get('count', 0)} in a row)",
                ),
            ),
            ("flags", Text(", ".join(render.flags(row)) or "-")),
            ("message", Text(render.clean(row.get("message", "")) or "-")),
            ("metrics", Text(render.metrics(row.get("metrics")) or "-")),
            ("last check", Text(render.moment(row.get("last_check"), now))),
            ("last change", Text(render.moment(row.get("last_change"), now))),
            ("interval", Text(render.seconds(row.get("interval")))),
        ]
        if row.get("description"):
            facts.insert(2, ("description", Text(render.clean(row["description"]))))
        if row.get("tags"):
            facts.append(("tags", Text(render.clean(", ".join(map(str, row["tags"]))))))
        if not row.get("enabled", True):
            facts.append(("enabled", Text("no")))
        if row.get("quorum") is not None:
            facts.append(("quorum", Text(str(row["quorum"]))))
        facts += render.location_lines(row, now)
        incident = row.get("incident")
        if isinstance(incident, dict):
            facts.append(("incident", Text(render.incident_line(incident, now))))
            ack = incident.get("ack")
            if isinstance(ack, dict):
                facts.append(("acknowledged", Text(render.ack_line(ack, now))))
        for key, value in facts:
            table.add_row(key, value)
        self.console.print(table)

    def _history(self, args: list[str]) -> None:
        limit = count(args[1], "history NAME [N]") if len(args) > 1 else 20
        rows = self.client.history(args[0], limit)
        if not rows:
            self.say(f"{args[0]}: no results yet")
            return
        table = render.table(self.console, "time", "status", "took", "message")
        for row in rows:
            status = str(row.get("status", "?"))
            table.add_row(
                Text(render.clock_time(row.get("started_at"))),
                Text(status, style=render.STATUS_STYLES.get(status, "")),
                Text(render.seconds(row.get("duration"))),
                Text(render.clean(row.get("message", ""))),
            )
        self.console.print(table)

    def _events(self, args: list[str]) -> None:
        limit = count(args[0], "events [N]") if args else 20
        rows = self.client.events(limit)
        if not rows:
            self.say("no events yet")
            return
        table = render.table(self.console, "time", "service", "event", "status", "message")
        for row in rows:
            table.add_row(
                Text(render.clock_time(row.get("at"))),
                Text(render.clean(row.get("service", ""))),
                Text(render.clean(row.get("kind", ""))),
                render.change(row),
                Text(render.clean(row.get("message", ""))),
            )
        self.console.print(table)

    def _ack(self, args: list[str]) -> None:
        name, comment = args[0], " ".join(args[1:])
        answer = self.client.acknowledge(name, author=self.author, comment=comment)
        incident = answer.get("incident") or {}
        ack = incident.get("ack") or {}
        who = ack.get("author", self.author)
        self.say(f"{name}: {incident.get('status', '?')} acknowledged by {who}")

    def _unack(self, args: list[str]) -> None:
        answer = self.client.unacknowledge(args[0], author=self.author)
        incident = answer.get("incident") or {}
        self.say(f"{args[0]}: acknowledgement taken back ({incident.get('status', '?')})")

    def _maint(self, args: list[str]) -> None:
        name, duration, comment = args[0], args[1], " ".join(args[2:])
        try:
            # Read here as the daemon reads it: a typo is named before anything is asked.
            parse_duration(duration)
        except ValueError as exc:
            raise UsageError(f"maint: {exc}") from None
        # A window names services by glob: make sure it covers this one, and only it.
        self.client.service(name)
        window = self.client.maintenance(
            services=[literal_pattern(name)],
            duration=duration,
            comment=comment,
            name=f"shell: {name}"[:200],
        )
        until = window.get("active_until")
        end = render.moment(until, self._clock()) if isinstance(until, int | float) else "?"
        self.say(f"{name}: in maintenance until {end} (window {window.get('id', '?')})")

    def _check(self, args: list[str]) -> None:
        name = args[0]
        before = self.client.service(name).get("seq")
        self.client.run_now(name)
        self.say(f"{name}: check queued")
        deadline = time.monotonic() + CHECK_WAIT
        while time.monotonic() < deadline:
            row = self.client.service(name)
            if row.get("seq") != before:
                status = str(row.get("status", "?"))
                self.say(
                    f"{name}: ",
                    (status, render.STATUS_STYLES.get(status, "")),
                    f" - {render.clean(row.get('message', ''))}",
                )
                return
            time.sleep(0.1)
        self.say(f"{name}: no result yet; `show {shlex.quote(name)}` later")

    def _nodes(self, args: list[str]) -> None:
        rows = self.client.nodes()
        if not rows:
            self.say("no node has joined yet")
            return
        table = render.table(
            self.console, "node", "state", "shards", "heartbeat", "checks/s", "config", "location"
        )
        for row in rows:
            up = bool(row.get("alive"))
            rate = row.get("checks_per_s")
            table.add_row(
                Text(render.clean(row.get("name", ""))),
                Text("alive" if up else "gone", style="green" if up else "bold red"),
                Text(str(row.get("shards", 0))),
                Text(f"{render.seconds(row.get('heartbeat_age'))} ago"),
                Text(f"{rate:.1f}" if isinstance(rate, int | float) else "-"),
                Text(render.clean(str(row.get("config_checksum", ""))[:12])),
                Text(render.clean(row.get("location", "")) or "-"),
            )
        self.console.print(table)
        alive = sum(1 for row in rows if row.get("alive"))
        shards = sum(int(row.get("shards") or 0) for row in rows)
        plural = "s" if len(rows) != 1 else ""
        self.say(f"{len(rows)} node{plural}: {alive} alive, {shards} shards held")

    def _reload(self, args: list[str]) -> None:
        try:
            answer = self.client.reload()
        except ClientError as exc:
            if exc.status in (404, 405):
                raise CommandFailed("this pymon cannot reload") from None
            body = exc.body if isinstance(exc.body, dict) else {}
            if exc.status != 422 or not body.get("errors"):
                raise
            answer = body
        for warning in answer.get("warnings") or []:
            self.warn(f"warning: {warning}")
        if answer.get("ok") is False or answer.get("errors"):
            for error in answer.get("errors") or []:
                self.warn(str(error))
            raise CommandFailed("the new config is invalid; the daemon keeps running the old one")
        given = answer.get("diff")
        diff: dict[str, Any] = given if isinstance(given, dict) else answer
        parts = []
        for key in ("added", "changed", "removed"):
            value = diff.get(key)
            if isinstance(value, list) and value:
                parts.append(f"{key} {render.clean(', '.join(map(str, value)))}")
        if isinstance(diff.get("unchanged"), int):
            parts.append(f"{diff['unchanged']} unchanged")
        self.say("config reloaded" + (": " + "; ".join(parts) if parts else ""))

    def _watch(self, args: list[str]) -> None:
        limit = count(args[0], "watch [N]") if args else None
        seen = {str(row.get("name")): render.summary(row) for row in self.client.services()}
        printed = 0
        try:
            while True:
                for item in self.client.stream():
                    printed += self._watched(item.kind, item.data, seen)
                    if limit is not None and printed >= limit:
                        return
                self.say("(the daemon ended the stream; reconnecting)")
                time.sleep(STREAM_RETRY)
                seen = {str(row.get("name")): render.summary(row) for row in self.client.services()}
        except KeyboardInterrupt:
            self.say("stopped watching")

    def _watched(self, kind: str, data: Any, seen: dict[str, str]) -> int:
        """Print one stream event if it is news; answers the lines printed."""
        if not isinstance(data, dict):
            return 0
        if kind == "hello":
            self.say(
                f"watching {self.client.url} ({data.get('services', '?')} services); Ctrl-C to stop"
            )
            return 0
        if kind == "event":
            self.console.print(
                render.styled(
                    f"{render.clock_time(data.get('at'))}  ",
                    (render.clean(data.get("service", "")), "bold"),
                    f"  {render.clean(data.get('kind', ''))}  ",
                )
                + render.change(data)
                + Text(f"  {render.clean(data.get('message', ''))}"),
                soft_wrap=True,
            )
            return 1
        if kind == "state":
            name = str(data.get("name"))
            summary = render.summary(data)
            if seen.get(name) == summary:
                return 0
            seen[name] = summary
            status = str(data.get("status", "?"))
            flags = ", ".join(render.flags(data))
            self.say(
                f"{render.clock_time(self._clock())}  ",
                (render.clean(name), "bold"),
                "  now ",
                (status, render.STATUS_STYLES.get(status, "")),
                f" [{flags}]" if flags else "",
                f"  {render.clean(data.get('message', ''))}",
            )
            return 1
        return 0

    def _help(self, args: list[str]) -> None:
        if args:
            _, command = lookup(args[0])
            if command is None:
                raise CommandFailed(unknown_command(args[0]))
            self.say(("usage: " + command.usage, "bold"))
            self.say(command.summary)
            return
        table = render.table(self.console, "command", "what it does")
        for command in COMMANDS.values():
            table.add_row(command.usage, command.summary)
        self.console.print(table)
        self.say("Quote names with spaces ('web server'); TAB completes commands and names.")

    def _quit(self, args: list[str]) -> None:
        self.finished = True
