"""TAB completion for the shell's prompt: reading a half-typed line as the shell
will (:func:`split_partial`), quoting a completed word back in the style it was
started in (:func:`quote_word`), and :class:`ShellCompleter`, which offers command
names, then per command a service name (quoted when it needs it), a status or a
command name.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Iterator

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from pymon.shell import render
from pymon.shell.commands import COMMANDS, lookup
from pymon.shell.core import Shell

__all__ = ["ShellCompleter", "quote_word", "split_partial"]


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
            _, command = lookup(words[0])
            kind = command.completes if command else ""
            choices = {
                "service": self.shell.names,
                "status": render.STATUSES,
                "command": COMMANDS,
            }.get(kind, ())
        else:
            return
        folded = current.casefold()
        exact = [c for c in choices if c.startswith(current)]
        picked = exact or [c for c in choices if c.casefold().startswith(folded)]
        for choice in picked:
            yield Completion(
                quote_word(choice, opened), start_position=-len(raw), display=render.clean(choice)
            )
