"""``pymon shell`` against a real daemon: each command through ``Shell.run_line``,
completion, the prompt loop on a pipe, ``-e`` scripts, and one real terminal session."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shlex
import stat
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from fnmatch import fnmatchcase
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from pymon.client import Client, ClientError
from pymon.config.load import load_config_text
from pymon.daemon import Daemon
from pymon.engine.maintenance import literal_pattern
from pymon.model import Status
from pymon.shell import (
    Shell,
    ShellCompleter,
    default_history,
    quote_word,
    repl,
    split_partial,
)
from tests.support.cli import PYMON
from tests.support.servers import TcpListener, free_port, refused_port
from tests.support.waiting import wait_for

EVIL = "evil\x1b[2J[red]x[/red]"


@pytest.fixture
async def daemon(tmp_path: Path, listener: TcpListener) -> AsyncIterator[Daemon]:
    d = Daemon(
        load_config_text(
            f"""
storage: {{url: "sqlite:///{tmp_path}/p.db", flush_interval: 50ms}}
web: {{listen: "127.0.0.1:0"}}
defaults: {{interval: 100ms, timeout: 1s, flap_guard: {{failed: 1}}}}
services:
  - {{name: down, type: tcp, host: 127.0.0.1, port: {refused_port()}}}
  - {{name: "web server", type: tcp, host: 127.0.0.1, port: {listener.port}}}
  - {{name: "we ird <b>", type: tcp, host: 127.0.0.1, port: 1, enabled: false}}
  - {{name: {json.dumps(EVIL)}, type: tcp, host: 127.0.0.1, port: 1, enabled: false}}
"""
        )
    )
    await d.start()
    await wait_for(
        lambda: (
            "down" in d.runtime.incidents
            and d.runtime.states["web server"].confirmed_status is Status.OK
        )
    )
    yield d
    await d.stop()


def url_of(daemon: Daemon) -> str:
    return f"http://127.0.0.1:{daemon.web_port}"


class Recorded:
    """A shell whose console writes plain text to a string."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.out = io.StringIO()
        console = Console(file=self.out, width=200, color_system=None, highlight=False)
        self.shell = Shell(Client(url, token=token), console, author="tester")

    async def run(self, line: str) -> bool:
        # The daemon serves on this thread's event loop; the shell blocks on its requests.
        return await asyncio.to_thread(self.shell.run_line, line)

    @property
    def text(self) -> str:
        return self.out.getvalue()


@pytest.fixture
def sh(daemon: Daemon) -> Recorded:
    return Recorded(url_of(daemon))


# -- commands ------------------------------------------------------------------------


async def test_status_lists_every_service(sh: Recorded) -> None:
    assert await sh.run("status")
    rows = {line.split("  ")[0]: line for line in sh.text.splitlines()}
    assert "failed" in rows["down"] and "connection refused" in rows["down"]
    assert " ok " in rows["web server"]
    assert "disabled" in rows["we ird <b>"]
    assert "4 services: 1 ok, 1 failed, 2 disabled" in sh.text


async def test_nodes_lists_the_cluster(sh: Recorded, daemon: Daemon) -> None:
    assert await sh.run("nodes")
    (row,) = [line for line in sh.text.splitlines() if line.startswith(daemon.membership.name)]
    shards = daemon.config.cluster.shards
    assert row.split()[1:3] == ["alive", str(shards)]
    assert daemon.config.checksum[:12] in row
    assert f"1 node: 1 alive, {shards} shards held" in sh.text


async def test_status_filters_by_status_name(sh: Recorded) -> None:
    assert await sh.run("status failed")
    assert "down" in sh.text
    assert "web server" not in sh.text
    assert "1 service: 1 failed" in sh.text


async def test_status_filters_by_text(sh: Recorded) -> None:
    assert await sh.run("status ird")
    assert "we ird <b>" in sh.text and "down" not in sh.text


async def test_status_says_when_nothing_matches(sh: Recorded) -> None:
    assert await sh.run("status nothing-like-this")
    assert "no service matches 'nothing-like-this'" in sh.text


async def test_names_with_markup_and_escapes_print_as_text(sh: Recorded) -> None:
    assert await sh.run("status")
    assert "\x1b" not in sh.text
    assert "evil\\x1b[2J[red]x[/red]" in sh.text


async def test_show_gives_the_detail(sh: Recorded) -> None:
    assert await sh.run("show down")
    assert "failed (confirmed" in sh.text
    assert "connection refused" in sh.text
    assert "incident" in sh.text and "notices" in sh.text


async def test_show_of_a_quoted_name(sh: Recorded) -> None:
    assert await sh.run("show 'we ird <b>'")
    assert "disabled" in sh.text and "enabled      no" in sh.text


async def test_show_of_an_unknown_service_says_so(sh: Recorded) -> None:
    assert not await sh.run("show nope")
    assert "no service named 'nope'" in sh.text


async def test_history_shows_the_newest_results(daemon: Daemon, sh: Recorded) -> None:
    await wait_for(lambda: daemon.runtime.states["down"].count >= 3)
    assert await sh.run("history down 2")
    results = [line for line in sh.text.splitlines() if "connection refused" in line]
    assert len(results) == 2
    assert all("failed" in line for line in results)


async def test_events_shows_transitions(sh: Recorded) -> None:
    assert await sh.run("events 50")
    opened = [line for line in sh.text.splitlines() if "incident_opened" in line]
    assert any(line.split()[1] == "down" for line in opened)


async def test_ack_and_unack(daemon: Daemon, sh: Recorded) -> None:
    assert await sh.run("ack down on it, cable pulled")
    assert "down: failed acknowledged by tester" in sh.text
    ack = daemon.runtime.incidents["down"].ack
    assert ack is not None and ack.comment == "on it, cable pulled"
    assert await sh.run("unack down")
    assert "down: acknowledgement taken back" in sh.text
    assert daemon.runtime.incidents["down"].ack is None


async def test_ack_without_an_incident_says_why(sh: Recorded) -> None:
    assert not await sh.run("ack 'we ird <b>'")
    assert "no open incident" in sh.text


async def test_maint_covers_exactly_that_service(daemon: Daemon, sh: Recorded) -> None:
    assert await sh.run("maint down 2h swapping the switch")
    assert "down: in maintenance until" in sh.text
    (window,) = daemon.runtime.adhoc_windows.values()
    assert list(window.services) == ["down"]
    assert window.comment == "swapping the switch"
    await wait_for(lambda: daemon.runtime.states["down"].maintenance)


async def test_maint_of_an_unknown_service_adds_no_window(daemon: Daemon, sh: Recorded) -> None:
    assert not await sh.run("maint nope 1h")
    assert "no service named 'nope'" in sh.text
    assert not daemon.runtime.adhoc_windows


async def test_maint_with_a_bad_duration_names_it(daemon: Daemon, sh: Recorded) -> None:
    assert not await sh.run("maint down soon")
    assert "duration" in sh.text
    assert not daemon.runtime.adhoc_windows


async def test_maint_longer_than_ten_years_is_refused(daemon: Daemon, sh: Recorded) -> None:
    assert not await sh.run("maint down 99999999d")
    assert "maint: '99999999d' is longer than 3650d (ten years)" in sh.text
    assert not daemon.runtime.adhoc_windows


async def test_check_runs_now_and_shows_the_result(sh: Recorded) -> None:
    assert await sh.run("check 'web server'")
    assert "web server: check queued" in sh.text
    assert "web server: ok - " in sh.text


async def test_check_of_a_disabled_service_is_refused(sh: Recorded) -> None:
    assert not await sh.run("check 'we ird <b>'")
    assert "disabled" in sh.text


async def test_watch_prints_events_and_state_changes(daemon: Daemon, sh: Recorded) -> None:
    watching = asyncio.create_task(sh.run("watch 2"))
    await wait_for(lambda: "watching" in sh.text)
    await daemon.runtime.acknowledge("down", "ann", "looking")
    assert await watching
    lines = sh.text.splitlines()[1:]
    assert any("down  acknowledged" in line and "looking" in line for line in lines)
    assert any("down  now failed [acknowledged]" in line for line in lines)


async def test_help_lists_and_explains(sh: Recorded) -> None:
    assert await sh.run("help")
    assert "maint NAME DURATION [COMMENT...]" in sh.text
    assert await sh.run("help ack")
    assert "usage: ack NAME [COMMENT...]" in sh.text


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("ack", "usage: ack NAME [COMMENT...]"),
        ("show a b", "usage: show NAME"),
        ("history down many", "usage: history NAME [N]"),
        ("events 0", "usage: events [N]"),
        ("stauts", "did you mean status?"),
        ("frobnicate", "unknown command 'frobnicate'"),
        ("show 'unclosed", "cannot read that line: No closing quotation"),
        ("help nope", "unknown command 'nope'"),
    ],
)
async def test_bad_usage_gets_one_line(sh: Recorded, line: str, said: str) -> None:
    assert not await sh.run(line)
    assert said in sh.text
    assert "Traceback" not in sh.text


async def test_quit_and_exit_finish(sh: Recorded) -> None:
    assert await sh.run("exit")
    assert sh.shell.finished


# -- failures talking to the daemon --------------------------------------------------


def test_a_daemon_that_is_down_is_named() -> None:
    port = free_port()
    sh = Recorded(f"http://127.0.0.1:{port}")
    assert not sh.shell.run_line("status")
    assert f"cannot reach pymon at http://127.0.0.1:{port}: connection refused" in sh.text


async def test_a_port_that_is_not_http_is_named() -> None:
    async def babble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 smtp.example ESMTP\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(babble, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        sh = Recorded(f"http://127.0.0.1:{port}")
        assert not await sh.run("status")
        assert f"cannot reach pymon at http://127.0.0.1:{port}: not a pymon" in sh.text
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Daemon]:
    from pymon.web.auth import hash_secret

    d = Daemon(
        load_config_text(
            f"""
storage: {{url: "sqlite:///{tmp_path}/p.db", flush_interval: 50ms}}
web:
  listen: "127.0.0.1:0"
  auth: {{read: true, tokens: [{{name: oncall-bot, token_hash: "{hash_secret("t0ken")}"}}]}}
defaults: {{interval: 100ms, timeout: 1s, flap_guard: {{failed: 1}}}}
services:
  - {{name: down, type: tcp, host: 127.0.0.1, port: {refused_port()}}}
"""
        )
    )
    await d.start()
    await wait_for(lambda: "down" in d.runtime.incidents)
    yield d
    await d.stop()


async def test_no_token_is_told_to_pass_one(guarded: Daemon) -> None:
    sh = Recorded(url_of(guarded))
    assert not await sh.run("status")
    assert "the daemon refused: 401" in sh.text and "pass --token" in sh.text


async def test_a_wrong_token_is_told_to_pass_one(guarded: Daemon) -> None:
    sh = Recorded(url_of(guarded), token="guess")
    assert not await sh.run("ack down")
    assert "the daemon refused: 403" in sh.text and "pass --token" in sh.text
    assert guarded.runtime.incidents["down"].ack is None


async def test_the_right_token_acts_as_its_owner(guarded: Daemon) -> None:
    sh = Recorded(url_of(guarded), token="t0ken")
    assert await sh.run("ack down")
    assert "acknowledged by oncall-bot" in sh.text


async def test_the_stream_needs_the_token_too(guarded: Daemon) -> None:
    stream = Client(url_of(guarded), token="guess").stream()
    with pytest.raises(ClientError) as refused:
        await asyncio.to_thread(next, stream)
    assert refused.value.status == 403


class OldPymon(BaseHTTPRequestHandler):
    """A daemon from before reload: every unknown route is FastAPI's 404."""

    def do_POST(self) -> None:
        body = b'{"detail":"Not Found"}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def old_pymon() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), OldPymon)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_reload_on_a_pymon_without_it_says_so(old_pymon: str) -> None:
    sh = Recorded(old_pymon)
    assert not sh.shell.run_line("reload")
    assert "this pymon cannot reload" in sh.text


async def test_reload_reports_what_changed_and_refuses_a_broken_file(tmp_path: Path) -> None:
    from pymon.config.load import load_config

    path = tmp_path / "p.yaml"
    head = f"""
storage: {{url: "sqlite:///{tmp_path}/p.db", flush_interval: 50ms}}
web: {{listen: "127.0.0.1:0"}}
reload: {{watch: false}}
defaults: {{interval: 100ms, timeout: 1s}}
services:
  - {{name: one, type: tcp, host: 127.0.0.1, port: 1, enabled: false}}
"""
    path.write_text(head)
    d = Daemon(load_config(path))
    await d.start()
    try:
        sh = Recorded(url_of(d))
        path.write_text(head + "  - {name: two, type: tcp, host: 127.0.0.1, port: 1}\n")
        assert await sh.run("reload")
        assert "config reloaded: added two; 1 unchanged" in sh.text
        path.write_text(head + "  - {name: three, type: nosuch}\n")
        assert not await sh.run("reload")
        assert "services[1].type" in sh.text
        assert "the new config is invalid; the daemon keeps running the old one" in sh.text
        assert set(d.runtime.configs) == {"one", "two"}
    finally:
        await d.stop()


# -- completion ----------------------------------------------------------------------


def completions(shell: Shell, text: str) -> list[str]:
    found = ShellCompleter(shell).get_completions(Document(text), CompleteEvent(True))
    return [c.text for c in found]


async def test_completes_command_names(sh: Recorded) -> None:
    assert completions(sh.shell, "st") == ["status"]
    assert completions(sh.shell, "e") == ["events", "exit"]
    assert completions(sh.shell, "help ma") == ["maint"]
    assert completions(sh.shell, "status fa") == ["failed"]


async def test_completes_service_names_fetched_from_the_daemon(sh: Recorded) -> None:
    assert await asyncio.to_thread(sh.shell.refresh_names) is None
    assert completions(sh.shell, "show do") == ["down"]
    assert completions(sh.shell, "ack 'we i") == ["'we ird <b>'"]
    assert completions(sh.shell, 'maint "web') == ['"web server"']
    assert completions(sh.shell, "show we") == ["'web server'", "'we ird <b>'"]
    assert completions(sh.shell, "show DO") == ["down"]
    assert completions(sh.shell, "show down ") == []


async def test_a_completed_name_reads_back_as_the_name(sh: Recorded) -> None:
    assert await asyncio.to_thread(sh.shell.refresh_names) is None
    (done,) = completions(sh.shell, "show ev")
    assert shlex.split(f"show {done}") == ["show", EVIL]


@given(st.text(min_size=1), st.sampled_from(["", "'", '"']))
def test_quoting_round_trips(name: str, opened: str) -> None:
    assert shlex.split(quote_word(name, opened)) == [name]
    words, current, _, _ = split_partial("ack " + quote_word(name, opened) + " ")
    assert words == ["ack", name] and current == ""


@given(st.text(min_size=1))
def test_an_escaped_glob_matches_only_its_name(name: str) -> None:
    assert fnmatchcase(name, literal_pattern(name))
    assert not fnmatchcase(name + "x", literal_pattern(name))


# -- the prompt loop -----------------------------------------------------------------


async def test_repl_runs_commands_keeps_history_and_exits(
    daemon: Daemon, sh: Recorded, tmp_path: Path
) -> None:
    history = tmp_path / "history"
    with create_pipe_input() as pipe:
        # Ctrl-C clears a half-typed line; TAB is the terminal session's (below).
        pipe.send_text("status\rshow\x03ack down on it\rexit\runack down\r")
        code = await asyncio.to_thread(
            repl,
            sh.shell,
            history=FileHistory(str(history)),
            term_input=pipe,
            term_output=DummyOutput(),
        )
    assert code == 0
    assert "4 services" in sh.text
    ack = daemon.runtime.incidents["down"].ack
    assert ack is not None and ack.comment == "on it"  # the line after exit never ran
    lines = [s for s in history.read_text().splitlines() if s.startswith("+")]
    assert lines == ["+status", "+ack down on it", "+exit"]


async def test_repl_ends_at_end_of_input(sh: Recorded) -> None:
    with create_pipe_input() as pipe:
        pipe.send_text("help\r")
        pipe.close()
        code = await asyncio.to_thread(
            repl, sh.shell, history=InMemoryHistory(), term_input=pipe, term_output=DummyOutput()
        )
    assert code == 0 and "usage" not in sh.text and "watch [N]" in sh.text


def test_history_lives_under_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    history = default_history()
    assert isinstance(history, FileHistory)
    path = tmp_path / "state" / "pymon" / "shell_history"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_history_falls_back_to_memory_when_unwritable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    assert isinstance(default_history(), InMemoryHistory)


# -- the command line ----------------------------------------------------------------


def shell_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PYMON, "shell", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_e_runs_commands_and_exits_zero(daemon: Daemon) -> None:
    done = await asyncio.to_thread(
        shell_cli, "--url", url_of(daemon), "-e", "status", "-e", "ack down on it"
    )
    assert done.returncode == 0, done.stderr
    assert "4 services" in done.stdout
    assert "down: failed acknowledged by" in done.stdout
    assert "\x1b" not in done.stdout
    ack = daemon.runtime.incidents["down"].ack
    assert ack is not None and ack.comment == "on it"


async def test_e_exits_one_when_a_command_fails(daemon: Daemon) -> None:
    done = await asyncio.to_thread(
        shell_cli, "--url", url_of(daemon), "-e", "show nope", "-e", "status"
    )
    assert done.returncode == 1
    assert "no service named 'nope'" in done.stderr
    assert "4 services" in done.stdout  # the rest still ran
    assert "Traceback" not in done.stderr


def test_e_against_a_daemon_that_is_down() -> None:
    port = free_port()
    done = shell_cli("--url", f"http://127.0.0.1:{port}", "-e", "status")
    assert done.returncode == 1
    assert "cannot reach pymon" in done.stderr and "connection refused" in done.stderr


async def test_commands_from_standard_input(daemon: Daemon) -> None:
    done = await asyncio.to_thread(
        shell_cli, "--url", url_of(daemon), stdin="status failed\nshow down\n"
    )
    assert done.returncode == 0, done.stderr
    assert "1 service: 1 failed" in done.stdout and "confirmed" in done.stdout


async def test_the_token_comes_from_the_environment(
    guarded: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYMON_TOKEN", "t0ken")
    done = await asyncio.to_thread(shell_cli, "--url", url_of(guarded), "-e", "ack down")
    assert done.returncode == 0, done.stderr
    assert "acknowledged by oncall-bot" in done.stdout


# -- one real terminal ---------------------------------------------------------------


@pytest.mark.slow
def test_a_real_terminal_session(tmp_path: Path) -> None:
    import pexpect

    from tests.test_cli import get, start, wait_api

    web = free_port()
    config = tmp_path / "p.yaml"
    config.write_text(
        f"""
storage: {{url: "sqlite:///{tmp_path}/p.db", flush_interval: 50ms}}
web: {{listen: "127.0.0.1:{web}"}}
defaults: {{interval: 200ms, timeout: 1s, flap_guard: {{failed: 1}}}}
services:
  - {{name: "database primary", type: tcp, host: 127.0.0.1, port: {refused_port()}}}
  - {{name: "web server", type: tcp, host: 127.0.0.1, port: 1, enabled: false}}
"""
    )
    url = f"http://127.0.0.1:{web}"
    daemon = start(config)
    try:
        wait_api(f"{url}/healthz", daemon)
        env = {
            **os.environ,
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "TERM": "xterm",
            "PROMPT_TOOLKIT_NO_CPR": "1",
        }
        term = pexpect.spawn(
            sys.executable,
            ["-m", "pymon", "shell", "--url", url],
            env=env,
            encoding="utf-8",
            timeout=20,
            dimensions=(40, 160),
        )
        try:
            term.expect("pymon>")
            term.send("status\r")
            term.expect("database primary")
            term.expect("pymon>")
            term.send("ack data\t")
            term.expect("'database primary'")
            term.send(" rebooting\r")
            term.expect("database primary: failed acknowledged by")
            term.expect("pymon>")
            term.send("watch\r")
            term.expect("Ctrl-C to stop")
            term.sendcontrol("c")
            term.expect("stopped watching")
            term.expect("pymon>")
            term.send("exit\r")
            term.expect(pexpect.EOF)
        finally:
            term.close()
        assert term.exitstatus == 0
        detail = get(f"{url}/api/v1/services/database%20primary")
        assert detail["incident"]["ack"]["comment"] == "rebooting"
        history = (tmp_path / "state" / "pymon" / "shell_history").read_text()
        assert "+ack 'database primary' rebooting" in history
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def test_the_package_keeps_its_public_names() -> None:
    import pymon.shell

    assert sorted(pymon.shell.__all__) == [
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
    assert all(hasattr(pymon.shell, name) for name in pymon.shell.__all__)
