"""The http check against a real aiohttp server and hostile raw servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest
from pydantic import ValidationError

from pymon import __version__
from pymon.checks.http import HttpSpec
from pymon.model import Status
from tests.checks.targets import RawServer, RunCheck, until_eof
from tests.support.servers import free_port


async def test_ok_with_metrics(check: RunCheck, web_url: str) -> None:
    result = await check("http", {"url": f"{web_url}/"})
    assert result.status is Status.OK, result.message
    assert result.message.startswith("HTTP 200 OK, 47 bytes in ")
    assert result.metrics["status_code"] == 200
    assert result.metrics["body_bytes"] == 47
    assert result.metrics["response_time_ms"] >= 0


async def test_not_found_is_reported_as_a_metric(check: RunCheck, web_url: str) -> None:
    # The check reports the code; the rules judge it with HTTP_STATUS later.
    result = await check("http", {"url": f"{web_url}/missing"})
    assert result.status is Status.OK
    assert result.message.startswith("HTTP 404 Not Found")
    assert result.metrics["status_code"] == 404


async def test_required_text_present(check: RunCheck, web_url: str) -> None:
    result = await check("http", {"url": f"{web_url}/", "contains": ["Hello", "all fine"]})
    assert result.status is Status.OK, result.message


async def test_required_text_missing_names_it(check: RunCheck, web_url: str) -> None:
    spec = {"url": f"{web_url}/", "contains": ["Hello", "Goodbye"]}
    result = await check("http", spec)
    assert result.status is Status.ERROR
    assert result.message.startswith("body lacks 'Goodbye' (HTTP 200 OK, 47 bytes in ")
    assert result.metrics["status_code"] == 200


async def test_forbidden_text_present_names_it(check: RunCheck, web_url: str) -> None:
    result = await check("http", {"url": f"{web_url}/", "not_contains": ["error", "Status"]})
    assert result.status is Status.ERROR
    assert result.message.startswith("body has forbidden 'Status' (")


async def test_forbidden_text_absent(check: RunCheck, web_url: str) -> None:
    result = await check("http", {"url": f"{web_url}/", "not_contains": ["error"]})
    assert result.status is Status.OK, result.message


async def test_regex_required_and_forbidden(check: RunCheck, web_url: str) -> None:
    spec = {
        "url": f"{web_url}/",
        "regex": True,
        "contains": [r"Status: \w+ fine", r"^Hello"],
        "not_contains": [r"(?i)ERROR|failure"],
    }
    result = await check("http", spec)
    assert result.status is Status.OK, result.message


async def test_regex_missing_and_forbidden_match_are_named(check: RunCheck, web_url: str) -> None:
    spec = {
        "url": f"{web_url}/",
        "regex": True,
        "contains": [r"Status: \d+"],
        "not_contains": [r"S\w+s"],
    }
    result = await check("http", spec)
    assert result.status is Status.ERROR
    assert result.message.startswith(
        "body lacks regex 'Status: \\\\d+'; body has forbidden regex 'S\\\\w+s' (matched 'Status')"
    )


def test_bad_regex_is_a_config_error() -> None:
    with pytest.raises(ValidationError) as info:
        HttpSpec.model_validate(
            {"url": "http://x/", "regex": True, "contains": ["ok"], "not_contains": ["a(b"]}
        )
    (error,) = info.value.errors()
    assert error["loc"] == ("not_contains",)
    assert "item 0 ('a(b') is not a valid regular expression" in error["msg"]


@pytest.mark.parametrize(
    ("spec", "where", "why"),
    [
        ({"url": "http://"}, "url", "the URL names no host"),
        ({"url": "http://host:99999/"}, "url", "not a valid URL: Port out of range"),
        ({"url": "http://ex ample/"}, "url", "a URL cannot contain spaces"),
        ({"url": "http://x/", "headers": {"X-A": "1\r\nX-B: 2"}}, "headers", "line break"),
        ({"url": "http://x/", "headers": {"X A": "1"}}, "headers", "not a valid header name"),
    ],
)
def test_bad_url_or_header_is_a_config_error(spec: dict[str, object], where: str, why: str) -> None:
    with pytest.raises(ValidationError) as info:
        HttpSpec.model_validate(spec)
    (error,) = info.value.errors()
    assert error["loc"] == (where,)
    assert why in error["msg"]


def test_regex_characters_are_plain_text_without_regex() -> None:
    assert HttpSpec.model_validate({"url": "http://x/", "contains": ["a(b"]}).contains == ["a(b"]


async def test_post_method(check: RunCheck, web_url: str) -> None:
    spec = {"url": f"{web_url}/post", "method": "POST", "contains": ["got POST"]}
    result = await check("http", spec)
    assert result.status is Status.OK, result.message


async def test_custom_headers_reach_the_server(check: RunCheck, web_url: str) -> None:
    spec = {
        "url": f"{web_url}/echo-header",
        "headers": {"X-Probe": "pymon-42"},
        "contains": ["X-Probe=pymon-42"],
    }
    result = await check("http", spec)
    assert result.status is Status.OK, result.message


async def test_requests_name_pymon_as_user_agent(check: RunCheck, web_url: str) -> None:
    spec = {"url": f"{web_url}/echo-header", "contains": [f"UA=pymon/{__version__}"]}
    result = await check("http", spec)
    assert result.status is Status.OK, result.message


async def test_redirect_not_followed_by_default(check: RunCheck, web_url: str) -> None:
    result = await check("http", {"url": f"{web_url}/redirect"})
    assert result.status is Status.OK
    assert result.metrics["status_code"] == 301


async def test_redirect_followed(check: RunCheck, web_url: str) -> None:
    spec = {"url": f"{web_url}/redirect", "follow_redirects": True, "contains": ["Hello"]}
    result = await check("http", spec)
    assert result.status is Status.OK, result.message
    assert result.metrics["status_code"] == 200
    assert f"from {web_url}/ after 1 redirect," in result.message


async def test_redirect_loop_fails(check: RunCheck, web_url: str) -> None:
    result = await check("http", {"url": f"{web_url}/loop", "follow_redirects": True})
    assert result.status is Status.FAILED
    assert result.message.startswith("too many redirects")


async def test_refused(check: RunCheck) -> None:
    port = free_port()
    result = await check("http", {"url": f"http://127.0.0.1:{port}/"})
    assert result.status is Status.FAILED
    assert result.message == f"connection refused (127.0.0.1 port {port})"


async def test_name_that_does_not_resolve(check: RunCheck) -> None:
    result = await check("http", {"url": "http://nowhere.invalid/"}, within=2.0)
    assert result.status is Status.FAILED
    assert result.message.startswith("cannot resolve nowhere.invalid: ")


async def test_garbage_instead_of_http(check: RunCheck, raw_server: RawServer) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"\x16\x03\x01 SSH-2.0-not-http\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with raw_server(garbage) as port:
        result = await check("http", {"url": f"http://127.0.0.1:{port}/"})
    assert result.status is Status.FAILED
    assert result.message.startswith("invalid HTTP response: ")


async def test_server_hangs_up_without_answer(check: RunCheck, raw_server: RawServer) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")

    async with raw_server(hang_up) as port:
        result = await check("http", {"url": f"http://127.0.0.1:{port}/"})
    assert result.status is Status.FAILED
    assert result.message == "server closed the connection without a complete response"


async def test_silent_server_times_out_waiting_for_headers(
    check: RunCheck, raw_server: RawServer
) -> None:
    async with raw_server(until_eof) as port:
        result = await check("http", {"url": f"http://127.0.0.1:{port}/"}, within=0.5)
    assert result.status is Status.FAILED
    assert result.message == "timed out after 0.5s while waiting for response headers"


async def test_silent_redirect_target_times_out_waiting_for_its_headers(
    check: RunCheck, raw_server: RawServer
) -> None:
    async with raw_server(until_eof) as silent:

        async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n"
                + f"Location: http://127.0.0.1:{silent}/\r\n\r\n".encode()
            )
            await writer.drain()
            await reader.read()

        async with raw_server(redirect) as port:
            spec = {"url": f"http://127.0.0.1:{port}/", "follow_redirects": True}
            result = await check("http", spec, within=0.5)
    assert result.status is Status.FAILED
    assert result.message == "timed out after 0.5s while waiting for response headers"


async def test_headers_dripping_forever_time_out(check: RunCheck, raw_server: RawServer) -> None:
    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = b"HTTP/1.1 200 OK\r\n"
        for i in range(10**6):
            writer.write(
                head[i : i + 1] if i < len(head) else b"X-Drip: 1\r\n"[i % 11 : i % 11 + 1]
            )
            await writer.drain()
            await asyncio.sleep(0.2)

    async with raw_server(drip) as port:
        result = await check("http", {"url": f"http://127.0.0.1:{port}/"}, within=1.0)
    assert result.status is Status.FAILED
    assert result.message == "timed out after 1s while waiting for response headers"
    assert result.duration < 2.0


async def test_body_dripping_forever_times_out(check: RunCheck, raw_server: RawServer) -> None:
    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
        while True:
            writer.write(b".")
            await writer.drain()
            await asyncio.sleep(0.2)

    async with raw_server(drip) as port:
        result = await check("http", {"url": f"http://127.0.0.1:{port}/"}, within=1.0)
    assert result.status is Status.FAILED
    assert result.message == "timed out after 1s while reading body"
    assert result.duration < 2.0


async def test_endless_body_is_cut_at_max_body(check: RunCheck, web_url: str) -> None:
    spec = {"url": f"{web_url}/endless", "max_body": 200_000}
    result = await check("http", spec, within=2.0)
    assert result.status is Status.OK, result.message
    assert result.metrics["body_bytes"] == 200_000
    assert "200000 bytes (cut at max_body)" in result.message


async def test_huge_body_reads_max_body_in_bounded_memory(check: RunCheck, web_url: str) -> None:
    spec = {"url": f"{web_url}/huge", "max_body": 1_000_000, "contains": ["never there"]}
    tracemalloc.start()
    try:
        result = await check("http", spec, within=2.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.metrics["body_bytes"] == 1_000_000
    # The server claims 1 GB; what the check holds is max_body plus buffers.
    assert peak < 20_000_000
    assert result.status is Status.ERROR
    assert result.message.startswith("body lacks 'never there' (HTTP 200 OK, 1000000 bytes")
    assert result.message.endswith("; only the first 1000000 bytes were read)")
