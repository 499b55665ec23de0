"""``pymon shell``: an interactive shell over a running daemon's JSON API.

The parts, each usable alone, each in a module of its own:

``commands.py``
    the command table (usage, summary, argument counts, what completes) and reading
    a line into a command and its arguments;
``core.py``
    :class:`Shell`, which runs one command line (``run_line``) against a
    :class:`~pymon.client.Client`, writing to a rich ``Console``; it never needs a
    terminal, so scripts (``pymon shell -e status``) and tests drive it directly;
``render.py``
    how answers are shown: plain text cleaned of markup and escapes, tables, times;
``completion.py``
    :class:`ShellCompleter`, completing command names, service names (quoted when
    they need it) and status names for prompt_toolkit;
``prompt.py``
    :func:`repl`, the prompt loop (history, completion, Ctrl-C, Ctrl-D), and
    :func:`main`, which picks between the loop and running commands non-interactively.

Every expected failure (daemon down, refused credentials, unknown service, bad
usage) is one clear line, never a traceback. Everything the daemon says is shown as
plain text: service names and messages may hold markup or terminal escapes.
"""

from __future__ import annotations

from pymon.shell.commands import COMMANDS
from pymon.shell.completion import ShellCompleter, quote_word, split_partial
from pymon.shell.core import Shell
from pymon.shell.prompt import default_history, history_file, main, repl, run_lines
from pymon.shell.render import clean, explain

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
