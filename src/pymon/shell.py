"""``pymon shell``: an interactive shell over a running daemon's JSON API.

The parts, each usable alone:

* :class:`Shell` parses and runs one command line (``run_line``) against a
  :class:`~pymon.client.Client`, writing to a rich ``Console``; it never needs a
  terminal, so scripts (``pymon shell -e status``) and tests drive it directly;
* :class:`ShellCompleter` completes command names, service names (quoted when they
  need it) and status names for prompt_toolkit;
* :func:`repl` is the prompt loop (history, completion, Ctrl-C, Ctrl-D);
* :func:`main` picks between the loop and running commands non-interactively.

Every expected failure (daemon down, refused credentials, unknown service, bad
usage) is one clear line, never a traceback. Everything the daemon says is shown as
plain text: service names and messages may hold markup or terminal escapes.
"""

from __future__ import annotations

import difflib
import os
import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pymon.client import Client, ClientError
from pymon.engine.maintenance import literal_pattern

__all__ = [
    "COMMANDS",
    "Shell",
    "ShellCompleter",
    "clean",
    "default_history",
    "explain",
    "history_file",
    "main",
    "quote_word",
    "repl",
    "run_lines",
    "split_partial",
]

STATUSES = ("ok", "warn", "error", "failed", "unknown", "disabled")
FLAGS = ("acknowledged", "maintenance", "flapping", "escalated", "unreachable", "recovering")
STATUS_STYLES = {
    "ok": "green",
    "warn": "yellow",
    "error": "red",
    "failed": "bold red",
    "unknown": "magenta",
    "disabled": "dim",
}
MAX_ROWS = 10_000  # the API's own page limit
CHECK_WAIT = 30.0  # seconds `check` waits for the result before leaving it queued
STREAM_RETRY = 2.0  # seconds before `watch` reconnects (the stream's own retry delay)


@dataclass(frozen=True, slots=True)
class Command:
    """One shell command: how to call it, what it does, and what its first argument
    completes to (``service``, ``command``, ``status`` or nothing)."""

    usage: str
    summary: str
    min_args: int = 0
    max_args: int | None = 0
    completes: str = ""


COMMANDS: dict[str, Command] = {
    "status": Command(
        "status [FILTER]",
        "every service in a table; FILTER is a status (failed, ok, ...) or text in a "
        "name, message, type or tag",
        max_args=None,
        completes="status",
    ),
    "show": Command("show NAME", "one service in detail", 1, 1, "service"),
    "history": Command("history NAME [N]", "NAME's newest N results (default 20)", 1, 2, "service"),
    "events": Command("events [N]", "the newest N transitions (default 20)", 0, 1),
    "ack": Command(
        "ack NAME [COMMENT...]",
        "acknowledge NAME's open incident: its notices stop",
        1,
        None,
        "service",
    ),
    "unack": Command("unack NAME", "take NAME's acknowledgement back", 1, 1, "service"),
    "maint": Command(
        "maint NAME DURATION [COMMENT...]",
        "put NAME in maintenance from now for DURATION (30m, 2h, 1d)",
        2,
        None,
        "service",
    ),
    "check": Command("check NAME", "run NAME's check now and show the result", 1, 1, "service"),
    "reload": Command("reload", "make the daemon read its config again"),
    "watch": Command(
        "watch [N]",
        "print events and state changes as they happen until Ctrl-C (or N lines)",
        0,
        1,
    ),
    "help": Command("help [COMMAND]", "list the commands, or explain one", 0, 1, "command"),
    "quit": Command("quit", "leave the shell (also exit, Ctrl-D)"),
}
ALIASES = {"exit": "quit", "?": "help"}


class UsageError(Exception):
    """A command was called wrongly; the message is its usage line or what is wrong."""


class CommandFailed(Exception):
    """A command could not do its work; the message says why."""


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
            "reload": self._reload,
            "watch": self._watch,
            "help": self._help,
            "quit": self._quit,
        }

    def run_line(self, line: str) -> bool:
        """Run one command line; True when it succeeded (an empty line does)."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            self.warn(f"cannot read that line: {exc}")
            return False
        if not words:
            return True
        name = ALIASES.get(words[0].lower(), words[0].lower())
        command = COMMANDS.get(name)
        if command is None:
            self.warn(_unknown_command(words[0]))
            return False
        args = words[1:]
        try:
            if len(args) < command.min_args or (
                command.max_args is not None and len(args) > command.max_args
            ):
                raise UsageError(f"usage: {command.usage}")
            self._handlers[name](args)
        except UsageError as exc:
            self.warn(str(exc))
            return False
        except CommandFailed as exc:
            self.warn(str(exc))
            return False
        except ClientError as exc:
            self.warn(explain(exc))
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
        self.console.print(_text(*parts), soft_wrap=True)

    def warn(self, message: str) -> None:
        """Write a failure (or warning) line to the error console."""
        self.errors.print(Text(clean(message), style="red"), soft_wrap=True)

    def _table(self, *columns: str) -> Table:
        terminal = self.console.is_terminal
        table = Table(
            box=box.SIMPLE_HEAD if terminal else None,
            show_edge=terminal,
            pad_edge=False,
            header_style="bold" if terminal else "",
        )
        for column in columns:
            table.add_column(column, overflow="fold")
        return table

    # -- commands ----------------------------------------------------------------

    def _status(self, args: list[str]) -> None:
        wanted = " ".join(args).strip()
        if wanted.lower() in STATUSES:
            rows = self.client.services(status=wanted.lower())
        else:
            rows = self.client.services(text=wanted or None)
        if not wanted:
            self.names = [str(row.get("name", "")) for row in rows]
        if not rows:
            self.say(f"no service matches {wanted!r}" if wanted else "no services configured")
            return
        now = self._clock()
        table = self._table("name", "status", "flags", "message", "last check")
        for row in rows:
            status = str(row.get("status", "?"))
            table.add_row(
                Text(clean(row.get("name", ""))),
                Text(status, style=STATUS_STYLES.get(status, "")),
                Text(", ".join(_flags(row))),
                Text(clean(row.get("message", ""))),
                Text(_ago(row.get("last_check"), now)),
            )
        self.console.print(table)
        counted = Counter(str(row.get("status", "?")) for row in rows)
        summary = ", ".join(f"{counted[s]} {s}" for s in (*STATUSES, "?") if counted[s])
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
            ("name", Text(clean(row.get("name", "")))),
            ("type", Text(clean(row.get("type", "")))),
            (
                "status",
                _text(
                    (status, STATUS_STYLES.get(status, "")),
                    f" ({hardness}, {row.get('count', 0)} in a row)",
                ),
            ),
            ("flags", Text(", ".join(_flags(row)) or "-")),
            ("message", Text(clean(row.get("message", "")) or "-")),
            ("metrics", Text(_metrics(row.get("metrics")) or "-")),
            ("last check", Text(_moment(row.get("last_check"), now))),
            ("last change", Text(_moment(row.get("last_change"), now))),
            ("interval", Text(_seconds(row.get("interval")))),
        ]
        if row.get("description"):
            facts.insert(2, ("description", Text(clean(row["description"]))))
        if row.get("tags"):
            facts.append(("tags", Text(clean(", ".join(map(str, row["tags"]))))))
        if not row.get("enabled", True):
            facts.append(("enabled", Text("no")))
        incident = row.get("incident")
        if isinstance(incident, dict):
            facts.append(("incident", Text(_incident(incident, now))))
            ack = incident.get("ack")
            if isinstance(ack, dict):
                facts.append(("acknowledged", Text(_ack(ack, now))))
        for key, value in facts:
            table.add_row(key, value)
        self.console.print(table)

    def _history(self, args: list[str]) -> None:
        limit = _count(args[1], "history NAME [N]") if len(args) > 1 else 20
        rows = self.client.history(args[0], limit)
        if not rows:
            self.say(f"{args[0]}: no results yet")
            return
        table = self._table("time", "status", "took", "message")
        for row in rows:
            status = str(row.get("status", "?"))
            table.add_row(
                Text(_clock_time(row.get("started_at"))),
                Text(status, style=STATUS_STYLES.get(status, "")),
                Text(_seconds(row.get("duration"))),
                Text(clean(row.get("message", ""))),
            )
        self.console.print(table)

    def _events(self, args: list[str]) -> None:
        limit = _count(args[0], "events [N]") if args else 20
        rows = self.client.events(limit)
        if not rows:
            self.say("no events yet")
            return
        table = self._table("time", "service", "event", "status", "message")
        for row in rows:
            table.add_row(
                Text(_clock_time(row.get("at"))),
                Text(clean(row.get("service", ""))),
                Text(clean(row.get("kind", ""))),
                _change(row),
                Text(clean(row.get("message", ""))),
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
        # A window names services by glob: make sure it covers this one, and only it.
        self.client.service(name)
        window = self.client.maintenance(
            services=[literal_pattern(name)],
            duration=duration,
            comment=comment,
            name=f"shell: {name}"[:200],
        )
        until = window.get("active_until")
        end = _moment(until, self._clock()) if isinstance(until, int | float) else "?"
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
                    (status, STATUS_STYLES.get(status, "")),
                    f" - {clean(row.get('message', ''))}",
                )
                return
            time.sleep(0.1)
        self.say(f"{name}: no result yet; `show {shlex.quote(name)}` later")

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
                parts.append(f"{key} {clean(', '.join(map(str, value)))}")
        if isinstance(diff.get("unchanged"), int):
            parts.append(f"{diff['unchanged']} unchanged")
        self.say("config reloaded" + (": " + "; ".join(parts) if parts else ""))

    def _watch(self, args: list[str]) -> None:
        limit = _count(args[0], "watch [N]") if args else None
        seen = {str(row.get("name")): _summary(row) for row in self.client.services()}
        printed = 0
        try:
            while True:
                for item in self.client.stream():
                    printed += self._watched(item.kind, item.data, seen)
                    if limit is not None and printed >= limit:
                        return
                self.say("(the daemon ended the stream; reconnecting)")
                time.sleep(STREAM_RETRY)
                seen = {str(row.get("name")): _summary(row) for row in self.client.services()}
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
                _text(
                    f"{_clock_time(data.get('at'))}  ",
                    (clean(data.get("service", "")), "bold"),
                    f"  {clean(data.get('kind', ''))}  ",
                )
                + _change(data)
                + Text(f"  {clean(data.get('message', ''))}"),
                soft_wrap=True,
            )
            return 1
        if kind == "state":
            name = str(data.get("name"))
            summary = _summary(data)
            if seen.get(name) == summary:
                return 0
            seen[name] = summary
            status = str(data.get("status", "?"))
            flags = ", ".join(_flags(data))
            self.say(
                f"{_clock_time(self._clock())}  ",
                (clean(name), "bold"),
                "  now ",
                (status, STATUS_STYLES.get(status, "")),
                f" [{flags}]" if flags else "",
                f"  {clean(data.get('message', ''))}",
            )
            return 1
        return 0

    def _help(self, args: list[str]) -> None:
        if args:
            name = ALIASES.get(args[0].lower(), args[0].lower())
            command = COMMANDS.get(name)
            if command is None:
                raise CommandFailed(_unknown_command(args[0]))
            self.say(("usage: " + command.usage, "bold"))
            self.say(command.summary)
            return
        table = self._table("command", "what it does")
        for command in COMMANDS.values():
            table.add_row(command.usage, command.summary)
        self.console.print(table)
        self.say("Quote names with spaces ('web server'); TAB completes commands and names.")

    def _quit(self, args: list[str]) -> None:
        self.finished = True


def explain(exc: ClientError) -> str:
    """What an operator should read for a failed request."""
    if exc.status is None:
        return str(exc)
    if exc.status in (401, 403):
        return f"the daemon refused: {exc.status} {exc.reason} — pass --token (or set $PYMON_TOKEN)"
    if exc.status in (404, 409, 422):
        return exc.reason
    return f"the daemon answered {exc.status}: {exc.reason}"


def clean(value: object) -> str:
    """``value`` as one printable line: control characters (terminal escapes included)
    and bidirectional overrides shown as escapes, newlines and tabs as spaces."""
    text = str(value)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in "\n\t\r":
            out.append(" ")
        elif ch.isprintable() or ord(ch) in _INVISIBLE_OK:
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


# Invisible format characters that are part of ordinary text (joiners in emoji and
# scripts); every other non-printable one, bidi overrides included, is escaped.
_INVISIBLE_OK = frozenset({0x200C, 0x200D})


def _text(*parts: str | tuple[str, str]) -> Text:
    text = Text()
    for part in parts:
        if isinstance(part, tuple):
            text.append(part[0], style=part[1])
        else:
            text.append(part)
    return text


def _unknown_command(word: str) -> str:
    close = difflib.get_close_matches(word.lower(), [*COMMANDS, *ALIASES], n=1)
    hint = f"; did you mean {close[0]}?" if close else "; `help` lists the commands"
    return f"unknown command {clean(word)!r}{hint}"


def _count(arg: str, usage: str) -> int:
    if not arg.isdigit() or not 1 <= int(arg) <= MAX_ROWS:
        raise UsageError(f"usage: {usage} (N: a number from 1 to {MAX_ROWS})")
    return int(arg)


def _flags(row: dict[str, Any]) -> list[str]:
    flags = [flag for flag in FLAGS if row.get(flag)]
    if not row.get("confirmed") and row.get("status") not in ("ok", "unknown", "disabled"):
        flags.append("soft")
    return flags


def _summary(row: dict[str, Any]) -> str:
    return f"{row.get('status')} {','.join(_flags(row))}"


def _change(row: dict[str, Any]) -> Text:
    status, previous = str(row.get("status", "?")), str(row.get("previous", ""))
    text = Text()
    if previous and previous != status:
        text.append(clean(previous), style=STATUS_STYLES.get(previous, ""))
        text.append(" → ")
    text.append(clean(status), style=STATUS_STYLES.get(status, ""))
    return text


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _ago(value: object, now: float) -> str:
    at = _number(value)
    if at is None:
        return "never"
    delta = now - at
    ahead = delta < 0
    delta = abs(delta)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            amount = f"{int(delta // size)}{unit}"
            break
    else:
        amount = f"{int(delta)}s"
    return f"in {amount}" if ahead else f"{amount} ago"


def _clock_time(value: object) -> str:
    at = _number(value)
    if at is None:
        return "-"
    try:
        moment = time.localtime(at)
    except (OverflowError, OSError, ValueError):
        return "-"
    if time.strftime("%Y-%m-%d", moment) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M:%S", moment)
    return time.strftime("%Y-%m-%d %H:%M:%S", moment)


def _moment(value: object, now: float) -> str:
    if _number(value) is None:
        return "never"
    return f"{_clock_time(value)} ({_ago(value, now)})"


def _seconds(value: object) -> str:
    seconds = _number(value)
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:g} s"


def _metrics(value: object) -> str:
    if not isinstance(value, dict):
        return ""
    return ", ".join(
        f"{clean(k)}={v:g}" if _number(v) is not None else f"{clean(k)}={clean(v)}"
        for k, v in value.items()
    )


def _incident(incident: dict[str, Any], now: float) -> str:
    return (
        f"#{incident.get('id', '?')} {clean(incident.get('status', '?'))} "
        f"since {_moment(incident.get('opened_at'), now)}, "
        f"worst {clean(incident.get('worst', '?'))}, "
        f"{incident.get('notices', 0)} notices"
        + (", escalated" if incident.get("escalated") else "")
    )


def _ack(ack: dict[str, Any], now: float) -> str:
    text = f"by {clean(ack.get('author', '?'))} at {_moment(ack.get('at'), now)}"
    if ack.get("comment"):
        text += f": {clean(ack['comment'])}"
    if _number(ack.get("expires")) is not None:
        text += f" (until {_moment(ack['expires'], now)})"
    return text


# -- completion ----------------------------------------------------------------------


def split_partial(text: str) -> tuple[list[str], str, str, str]:
    """Read a line as far as it is typed: the complete words, the word being typed
    (unquoted), its raw text (as typed, quotes included) and the quote it opened with."""
    words: list[str] = []
    word: list[str] = []
    start = -1
    quote = opened = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"' and text[i + 1 : i + 2] in ('"', "\\"):
                i += 1
                word.append(text[i])
            else:
                word.append(ch)
        elif ch in " \t\r\n":
            if start >= 0:
                words.append("".join(word))
                word, start = [], -1
        else:
            if start < 0:
                start, opened = i, ch if ch in "'\"" else ""
            if ch in "'\"":
                quote = ch
            elif ch == "\\" and i + 1 < len(text):
                i += 1
                word.append(text[i])
            else:
                word.append(ch)
        i += 1
    return words, "".join(word), text[start:] if start >= 0 else "", opened


def quote_word(word: str, opened: str = "") -> str:
    """``word`` as the shell reads it back, in the quote style the user started with."""
    if opened == '"':
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if opened == "'" and "'" not in word:
        return f"'{word}'"
    return shlex.quote(word)


class ShellCompleter(Completer):
    """Completes command names, then per command a service name, a status or a command."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        """Completions for the word before the cursor."""
        words, current, raw, opened = split_partial(document.text_before_cursor)
        if not words:
            choices: Iterable[str] = [*COMMANDS, "exit"]
        elif len(words) == 1:
            command = COMMANDS.get(ALIASES.get(words[0].lower(), words[0].lower()))
            kind = command.completes if command else ""
            choices = {
                "service": self.shell.names,
                "status": STATUSES,
                "command": COMMANDS,
            }.get(kind, ())
        else:
            return
        folded = current.casefold()
        exact = [c for c in choices if c.startswith(current)]
        picked = exact or [c for c in choices if c.casefold().startswith(folded)]
        for choice in picked:
            yield Completion(
                quote_word(choice, opened), start_position=-len(raw), display=clean(choice)
            )


# -- the prompt loop ---------------------------------------------------------------


def history_file() -> Path:
    """Where the shell keeps its history: ``$XDG_STATE_HOME/pymon/shell_history``,
    by default under ``~/.local/state``."""
    base = os.environ.get("XDG_STATE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "pymon" / "shell_history"


def default_history() -> History:
    """A file history at :func:`history_file`, or an in-memory one when that cannot be written."""
    path = history_file()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Created private: the history may hold comments about incidents.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    except OSError:
        return InMemoryHistory()
    return FileHistory(str(path))


def repl(
    shell: Shell,
    *,
    history: History | None = None,
    term_input: Input | None = None,
    term_output: Output | None = None,
) -> int:
    """Prompt for commands until quit, exit or Ctrl-D; Ctrl-C clears the line.
    Answers the exit status (0)."""
    session: PromptSession[str] = PromptSession(
        history=history if history is not None else default_history(),
        completer=ShellCompleter(shell),
        complete_while_typing=False,
        input=term_input,
        output=term_output,
    )
    error = shell.refresh_names()
    if error is None:
        shell.say(
            f"pymon at {shell.client.url}: {len(shell.names)} services. "
            "`help` lists the commands; Ctrl-D leaves."
        )
    else:
        shell.warn(explain(error))
    while not shell.finished:
        try:
            line = session.prompt("pymon> ")
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        shell.run_line(line)
        if line.strip():
            shell.refresh_names()
    return 0


def run_lines(shell: Shell, lines: Iterable[str]) -> int:
    """Run command lines in order (all of them, unless one quits); 0 when every one
    succeeded, else 1."""
    failed = False
    for line in lines:
        failed |= not shell.run_line(line)
        if shell.finished:
            break
    return 1 if failed else 0


def main(url: str, *, token: str | None, commands: list[str], author: str) -> int:
    """``pymon shell``: run ``commands`` (or standard input's lines when it is not a
    terminal) and answer 0 if all succeeded, else 1; or prompt interactively."""
    # Piped output goes to files and grep: wide lines rather than rows wrapped at 80.
    width = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200
    console = Console(highlight=False, width=width)
    errors = Console(stderr=True, highlight=False, width=width)
    shell = Shell(Client(url, token=token), console, errors=errors, author=author)
    if commands:
        return run_lines(shell, commands)
    if not sys.stdin.isatty():
        return run_lines(shell, sys.stdin)
    return repl(shell)
