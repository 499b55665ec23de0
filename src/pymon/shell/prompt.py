"""The shell at a terminal or in a script: the prompt loop (:func:`repl`, with
history, completion, Ctrl-C and Ctrl-D), where the history is kept, running command
lines non-interactively (:func:`run_lines`), and :func:`main`, which ``pymon shell``
calls to pick between the two.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from rich.console import Console

from pymon.client import Client
from pymon.shell.completion import ShellCompleter
from pymon.shell.core import Shell
from pymon.shell.render import explain

__all__ = ["default_history", "history_file", "main", "repl", "run_lines"]


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
