"""The shell's command table and how a line is read: each command's usage, summary,
argument counts and what its first argument completes to; aliases; splitting a line
into a command and its arguments; and the two failures a command may raise.

Nothing here talks to the daemon: :class:`~pymon.shell.core.Shell` runs what
:func:`parse_line` reads, :class:`~pymon.shell.completion.ShellCompleter` completes
from the same table.
"""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass

from pymon.shell.render import clean

__all__ = [
    "ALIASES",
    "COMMANDS",
    "MAX_ROWS",
    "Command",
    "CommandFailed",
    "UsageError",
    "count",
    "lookup",
    "parse_line",
    "unknown_command",
]

MAX_ROWS = 10_000  # the API's own page limit


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
    "nodes": Command(
        "nodes", "the cluster's nodes: alive, shards, heartbeat age, checks/s, config, location"
    ),
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


def lookup(word: str) -> tuple[str, Command | None]:
    """The command ``word`` names (any case, aliases followed): its name and entry,
    the entry None when there is no such command."""
    name = ALIASES.get(word.lower(), word.lower())
    return name, COMMANDS.get(name)


def parse_line(line: str) -> tuple[str, list[str]] | None:
    """A command line as the command's name and its arguments; None for an empty
    line. Raises :class:`UsageError` for a line that cannot be read, an unknown
    command, or too few or too many arguments."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"cannot read that line: {exc}") from None
    if not words:
        return None
    name, command = lookup(words[0])
    if command is None:
        raise UsageError(unknown_command(words[0]))
    args = words[1:]
    if len(args) < command.min_args or (
        command.max_args is not None and len(args) > command.max_args
    ):
        raise UsageError(f"usage: {command.usage}")
    return name, args


def unknown_command(word: str) -> str:
    """What to say for a word that names no command, with the closest one."""
    close = difflib.get_close_matches(word.lower(), [*COMMANDS, *ALIASES], n=1)
    hint = f"; did you mean {close[0]}?" if close else "; `help` lists the commands"
    return f"unknown command {clean(word)!r}{hint}"


def count(arg: str, usage: str) -> int:
    """The argument N of ``usage``: a number from 1 to :data:`MAX_ROWS`."""
    if not arg.isdigit() or not 1 <= int(arg) <= MAX_ROWS:
        raise UsageError(f"usage: {usage} (N: a number from 1 to {MAX_ROWS})")
    return int(arg)
