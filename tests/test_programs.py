"""The shared program runner, where its two users (plugin check, command channel) do not reach."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from pymon.programs import CappedOutput, Keep, Program, signal_name

PIECES = [b"abc", b"", b"defgh", b"ij"]


@pytest.mark.parametrize(("keep", "kept"), [("head", b"abcd"), ("tail", b"ghij")])
def test_pieces_across_the_limit_keep_the_right_end(keep: Keep, kept: bytes) -> None:
    output = CappedOutput(4, keep)
    for piece in PIECES:
        output.add(piece)
    assert (bytes(output.kept), output.total, output.cut) == (kept, 10, True)


@pytest.mark.parametrize("keep", ["head", "tail"])
def test_a_stream_exactly_at_the_limit_is_not_cut(keep: Keep) -> None:
    output = CappedOutput(10, keep)
    for piece in PIECES:
        output.add(piece)
    assert (bytes(output.kept), output.cut) == (b"abcdefghij", False)


def test_a_tail_keeps_the_end_of_one_piece_larger_than_the_limit() -> None:
    output = CappedOutput(3, "tail")
    output.add(b"xy")
    output.add(b"0123456789")
    assert bytes(output.kept) == b"789"


def test_a_zero_limit_keeps_nothing_but_counts() -> None:
    output = CappedOutput(0, "tail")
    output.add(b"abc")
    assert (bytes(output.kept), output.total, output.cut) == (b"", 3, True)


def test_text_replaces_bytes_that_are_not_utf8() -> None:
    output = CappedOutput(16, "head")
    output.add(b"ok \xff\xfe done")
    assert output.text() == "ok \ufffd\ufffd done"


async def test_without_input_the_program_reads_end_of_file_at_once() -> None:
    program = await Program.start(
        [sys.executable, "-c", "import sys; print(len(sys.stdin.read()))"],
        env=dict(os.environ),
        keep="head",
        limit=1024,
    )
    async with program:
        async with asyncio.timeout(30):
            await program.wait()
        await program.drain()
    assert (program.returncode, program.stdout.text()) == (0, "0\n")


def test_signal_name_names_known_signals_and_numbers_the_rest() -> None:
    assert (signal_name(signal.SIGSEGV), signal_name(250)) == ("SIGSEGV", "250")


@pytest.mark.parametrize("pidfd", [True, False])
async def test_output_exit_and_input_through_either_way_of_starting(
    pidfd: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a pidfd (Linux) the program is started by Popen and watched on the loop;
    # without one, by the loop's own subprocess support. Both read the same.
    if not pidfd:
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    code = (
        "import sys; data = sys.stdin.read(); print(data.upper()); "
        "sys.stderr.write('e'); sys.exit(3)"
    )
    program = await Program.start(
        [sys.executable, "-c", code], env=dict(os.environ), keep="head", limit=1024, stdin=b"hi"
    )
    async with program:
        async with asyncio.timeout(30):
            await program.wait()
        assert await program.drain()
    assert program.returncode == 3
    assert (program.stdout.text(), program.stderr.text()) == ("HI\n", "e")
    assert not program.output_open
