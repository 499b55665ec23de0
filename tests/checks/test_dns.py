"""The dns check against a real dnsmasq on 127.0.0.1, and raw UDP servers that misbehave."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dns.message
import pytest
from pydantic import ValidationError

from pymon.checks.dns import DnsSpec, system_nameserver
from pymon.errors import CheckSetupError
from pymon.model import Status
from tests.checks.dns_server import DNSMASQ, dnsmasq, ns_record, udp_server
from tests.checks.targets import FakeResolver, RunCheck
from tests.conftest import need
from tests.support.cli import pymon
from tests.support.servers import free_port

RECORDS = [
    # Names under pymon.test that no record names are NXDOMAIN; names elsewhere REFUSED.
    "--local=/pymon.test/",
    "--address=/a.pymon.test/127.0.0.5",
    "--host-record=h.pymon.test,127.0.0.6,::6",
    "--mx-host=pymon.test,mail.pymon.test,10",
    "--txt-record=t.pymon.test,v=spf1 ,-all",
    "--cname=alias.pymon.test,h.pymon.test",
    "--ptr-record=5.0.0.127.in-addr.arpa,a.pymon.test",
    ns_record("pymon.test", "ns1.pymon.test"),
    # More than fits in 512 bytes: dnsmasq truncates the UDP answer.
    *(f"--txt-record=big.pymon.test,record {i:02} {'padding ' * 5}" for i in range(20)),
]


@pytest.fixture(scope="module")
def dns_port() -> Iterator[int]:
    """Port of a dnsmasq serving RECORDS, shared by the tests of this module."""
    need(os.access(DNSMASQ, os.X_OK), f"dnsmasq not found at {DNSMASQ} (Debian: dnsmasq-base)")
    with dnsmasq(RECORDS) as port:
        yield port


async def ask(check: RunCheck, port: int, query: str, **keys: object) -> tuple[Status, str]:
    result = await check("dns", {"query": query, "server": "127.0.0.1", "port": port, **keys})
    return result.status, result.message


async def test_a_record_matching_expect_is_ok_with_metrics(check: RunCheck, dns_port: int) -> None:
    spec = {"query": "a.pymon.test", "server": "127.0.0.1", "port": dns_port, "expect": "127.0.0.5"}
    result = await check("dns", spec)
    assert result.status is Status.OK, result.message
    assert result.message == f"a.pymon.test A: 127.0.0.5 (127.0.0.1 port {dns_port})"
    assert result.metrics["rcode"] == 0
    assert result.metrics["answers"] == 1
    assert result.metrics["response_time_ms"] >= 0


async def test_aaaa_compares_addresses_not_spellings(check: RunCheck, dns_port: int) -> None:
    status, message = await ask(check, dns_port, "h.pymon.test", record="AAAA", expect="0:0:0::0:6")
    assert status is Status.OK, message
    assert "h.pymon.test AAAA: ::6 " in message


async def test_mx_ignores_case_and_final_dot(check: RunCheck, dns_port: int) -> None:
    status, message = await ask(
        check, dns_port, "pymon.test", record="mx", expect="10 MAIL.pymon.test"
    )
    assert status is Status.OK, message
    assert "pymon.test MX: 10 mail.pymon.test. " in message


async def test_txt_strings_are_joined_unquoted(check: RunCheck, dns_port: int) -> None:
    status, message = await ask(check, dns_port, "t.pymon.test", record="TXT", expect="v=spf1 -all")
    assert status is Status.OK, message
    assert "t.pymon.test TXT: v=spf1 -all " in message


async def test_cname_record(check: RunCheck, dns_port: int) -> None:
    status, message = await ask(
        check, dns_port, "alias.pymon.test", record="CNAME", expect="h.pymon.test."
    )
    assert status is Status.OK, message
    assert "alias.pymon.test CNAME: h.pymon.test. " in message


async def test_a_record_follows_cname(check: RunCheck, dns_port: int) -> None:
    status, message = await ask(check, dns_port, "alias.pymon.test", expect="127.0.0.6")
    assert status is Status.OK, message
    assert "alias.pymon.test A: 127.0.0.6 via h.pymon.test. " in message


async def test_ns_record(check: RunCheck, dns_port: int) -> None:
    status, message = await ask(check, dns_port, "pymon.test", record="NS", expect="ns1.pymon.test")
    assert status is Status.OK, message


async def test_ptr_takes_an_address_and_reverses_it(check: RunCheck, dns_port: int) -> None:
    status, message = await ask(check, dns_port, "127.0.0.5", record="PTR", expect="a.pymon.test")
    assert status is Status.OK, message
    assert "5.0.0.127.in-addr.arpa PTR: a.pymon.test. " in message


async def test_expect_mismatch_is_error_naming_both(check: RunCheck, dns_port: int) -> None:
    spec = {"query": "a.pymon.test", "server": "127.0.0.1", "port": dns_port}
    result = await check("dns", {**spec, "expect": ["127.0.0.5", "127.0.0.9"]})
    assert result.status is Status.ERROR
    assert result.message == (
        f"a.pymon.test A: expected 127.0.0.9, got 127.0.0.5 (127.0.0.1 port {dns_port})"
    )
    assert result.metrics["answers"] == 1


async def test_nxdomain_is_failed(check: RunCheck, dns_port: int) -> None:
    spec = {"query": "nosuch.pymon.test", "server": "127.0.0.1", "port": dns_port}
    result = await check("dns", spec)
    assert result.status is Status.FAILED
    assert "NXDOMAIN" in result.message
    assert result.metrics["rcode"] == 3
    assert result.metrics["answers"] == 0


async def test_empty_answer_is_failed(check: RunCheck, dns_port: int) -> None:
    status, message = await ask(check, dns_port, "h.pymon.test", record="MX")
    assert status is Status.FAILED
    assert (
        message
        == f"h.pymon.test MX: no answer (NOERROR with no MX record, 127.0.0.1 port {dns_port})"
    )


async def test_refused_is_failed_naming_the_rcode(check: RunCheck, dns_port: int) -> None:
    status, message = await ask(check, dns_port, "example.com")
    assert status is Status.FAILED
    assert message == f"example.com A: REFUSED (127.0.0.1 port {dns_port})"


async def test_truncated_udp_answer_is_retried_over_tcp(check: RunCheck, dns_port: int) -> None:
    result = await check(
        "dns", {"query": "big.pymon.test", "record": "TXT", "server": "127.0.0.1", "port": dns_port}
    )
    assert result.status is Status.OK, result.message
    assert result.metrics["answers"] == 20
    assert "and 15 more" in result.message


async def test_query_over_tcp(check: RunCheck, dns_port: int) -> None:
    status, message = await ask(check, dns_port, "a.pymon.test", protocol="tcp", expect="127.0.0.5")
    assert status is Status.OK, message


async def test_tcp_refused_is_failed(check: RunCheck) -> None:
    port = free_port()
    status, message = await ask(check, port, "a.pymon.test", protocol="tcp")
    assert status is Status.FAILED
    assert message == f"connection refused (127.0.0.1 port {port}, tcp)"


async def test_server_given_by_name_is_resolved_first(check: RunCheck, dns_port: int) -> None:
    resolver = FakeResolver({"ns.pymon.test": ["127.0.0.1"]})
    spec = {"query": "a.pymon.test", "server": "ns.pymon.test", "port": dns_port}
    result = await check("dns", spec, resolver=resolver)
    assert result.status is Status.OK, result.message
    assert resolver.asked == ["ns.pymon.test"]


async def test_server_name_that_does_not_resolve_is_failed(check: RunCheck) -> None:
    spec = {"query": "a.pymon.test", "server": "ns.nowhere.test"}
    result = await check("dns", spec, resolver=FakeResolver())
    assert result.status is Status.FAILED
    assert result.message == (
        "cannot resolve server ns.nowhere.test: fake resolver: ns.nowhere.test is not known"
    )


async def test_silent_server_times_out(check: RunCheck) -> None:
    async with udp_server(lambda data: None) as port:
        result = await check(
            "dns", {"query": "a.pymon.test", "server": "127.0.0.1", "port": port}, within=0.5
        )
    assert result.status is Status.FAILED
    assert result.message == (
        f"timed out after 0.5s while waiting for an answer from 127.0.0.1 port {port} (udp)"
    )
    assert not result.metrics


async def test_garbage_answer_is_failed(check: RunCheck) -> None:
    async with udp_server(lambda data: b"garbage!") as port:
        status, message = await ask(check, port, "a.pymon.test")
    assert status is Status.FAILED
    assert message.startswith(f"bad response from 127.0.0.1 port {port}: ")


async def test_answer_to_another_query_is_failed(check: RunCheck) -> None:
    def answer_another_query(data: bytes) -> bytes:
        return dns.message.make_response(dns.message.make_query("b.example", "A")).to_wire()

    async with udp_server(answer_another_query) as port:
        status, message = await ask(check, port, "a.pymon.test")
    assert status is Status.FAILED
    assert message == (
        f"bad response from 127.0.0.1 port {port}: "
        "A DNS query response does not respond to the question asked."
    )


@pytest.mark.parametrize(
    ("keys", "where", "why"),
    [
        ({"expect": "not-an-ip"}, "expect", "item 0 ('not-an-ip') is not a valid A record"),
        ({"record": "MX", "expect": "mail.example"}, "expect", "is not a valid MX record"),
        ({"query": "a..b"}, "query", "is not a valid DNS name"),
        ({"record": "SRV"}, "record", "Input should be"),
    ],
)
def test_config_errors_name_the_key(keys: dict[str, object], where: str, why: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DnsSpec.model_validate({"query": "a.example", **keys})
    errors = caught.value.errors()
    assert errors[0]["loc"] == (where,)
    assert why in errors[0]["msg"]


def test_default_server_is_the_first_nameserver_of_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("search example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n")
    assert system_nameserver(str(conf)) == "192.0.2.53"


def test_no_nameserver_in_resolv_conf_is_a_setup_error(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("search example\n")
    with pytest.raises(CheckSetupError, match="no server given and no nameserver in"):
        system_nameserver(str(conf))


@pytest.mark.slow
def test_pymon_check_dns_from_the_command_line(dns_port: int) -> None:
    out = pymon(
        "check", "dns", "--query", "a.pymon.test", "--server", "127.0.0.1",
        "--port", str(dns_port), "--expect", "127.0.0.5",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("OK - a.pymon.test A: 127.0.0.5 ")
    assert "|rcode=0 answers=1 response_time_ms=" in out.stdout
