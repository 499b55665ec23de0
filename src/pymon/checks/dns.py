"""``dns``: ask a DNS server for a record with dnspython; judge the rcode and the answers."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.reversename
import dns.rrset
from dns.rdtypes.ANY.TXT import TXT
from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from pymon.checks.base import CheckContext, resolve_host
from pymon.checks.spec import CheckSpec
from pymon.errors import CheckSetupError
from pymon.model import CheckResult, Status

__all__ = ["RESOLV_CONF", "DnsSpec", "check_dns", "normalize", "query_name", "system_nameserver"]

RESOLV_CONF = "/etc/resolv.conf"

RecordType = Literal["A", "AAAA", "MX", "TXT", "CNAME", "NS", "PTR"]

# Answers named in a message; the metric still counts them all.
_SHOWN = 5


class DnsSpec(CheckSpec):
    """Keys of a ``dns`` service."""

    # YAML and the command line read `expect: 42` or `--expect 42` as a number.
    model_config = ConfigDict(coerce_numbers_to_str=True)

    # Before query and expect: their validators read it.
    record: RecordType = "A"
    # Not `name`: that is the service's name.
    query: str = Field(min_length=1)
    server: str | None = Field(default=None, min_length=1)
    port: int = Field(default=53, ge=1, le=65535)
    protocol: Literal["udp", "tcp"] = "udp"
    expect: list[str] = Field(default_factory=list)

    @field_validator("record", mode="before")
    @classmethod
    def _record_upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("expect", mode="before")
    @classmethod
    def _expect_as_list(cls, value: Any) -> Any:
        # `expect: 192.0.2.1` and a single `--expect` give one value, not a list.
        return value if isinstance(value, list) else [value]

    @field_validator("query")
    @classmethod
    def _query_is_a_name(cls, query: str, info: ValidationInfo) -> str:
        try:
            query_name(query, info.data.get("record", "A"))
        except dns.exception.DNSException as exc:
            raise ValueError(f"{query!r} is not a valid DNS name: {exc}") from None
        return query

    @field_validator("expect")
    @classmethod
    def _expect_parses(cls, items: list[str], info: ValidationInfo) -> list[str]:
        record = info.data.get("record")
        if record is None:  # record itself was invalid and is reported on its own
            return items
        for i, item in enumerate(items):
            try:
                normalize(record, item)
            except dns.exception.DNSException as exc:
                raise ValueError(
                    f"item {i} ({item!r}) is not a valid {record} record: {exc}"
                ) from None
        return items


def query_name(name: str, record: str) -> dns.name.Name:
    """The name to ask for: ``name``, or for PTR an IP address turned into its reverse name."""
    if record == "PTR":
        try:
            return dns.reversename.from_address(name)
        except (ValueError, dns.exception.SyntaxError):
            pass
    return dns.name.from_text(name)


def normalize(record: str, text: str) -> str:
    """The form an expected answer is compared in; raises DNSException when it does not parse.

    Addresses as Python writes them (``::1``), names lower case and absolute (trailing
    dot), MX as ``10 mail.example.``, TXT as the record's strings joined, unquoted.
    """
    if record == "TXT":
        return text
    rdata = dns.rdata.from_text(
        dns.rdataclass.IN,
        dns.rdatatype.from_text(record),
        text,
        origin=dns.name.root,
        relativize=False,
    )
    return _form(rdata)


def _form(rdata: dns.rdata.Rdata) -> str:
    if isinstance(rdata, TXT):
        return b"".join(rdata.strings).decode(errors="backslashreplace")
    return rdata.to_text().lower()


def system_nameserver(path: str = RESOLV_CONF) -> str:
    """The first ``nameserver`` in ``path`` (resolv.conf); CheckSetupError when it has none."""
    try:
        nameservers = dns.resolver.Resolver(filename=path).nameservers
    except (OSError, dns.resolver.NoResolverConfiguration) as exc:
        raise CheckSetupError(f"no server given and no nameserver in {path} ({exc})") from None
    return str(nameservers[0])


async def _server_address(spec: DnsSpec, ctx: CheckContext) -> str:
    if spec.server is None:
        ctx.stage = f"reading {RESOLV_CONF}"
        return await asyncio.to_thread(system_nameserver)
    return (await resolve_host(spec.server, ctx))[0]


def _shown(forms: list[str]) -> str:
    more = f" and {len(forms) - _SHOWN} more" if len(forms) > _SHOWN else ""
    return ", ".join(forms[:_SHOWN]) + more


def _judge(
    spec: DnsSpec, qname: dns.name.Name, response: dns.message.Message, where: str
) -> tuple[Status, str, int]:
    """The verdict on a response, its message and the number of answers."""
    asked = f"{qname.to_text(omit_final_dot=True)} {spec.record}"
    rcode = response.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return Status.FAILED, f"{asked}: NXDOMAIN, no such name ({where})", 0
    if rcode != dns.rcode.NOERROR:
        return Status.FAILED, f"{asked}: {dns.rcode.to_text(rcode)} ({where})", 0
    try:
        if not isinstance(response, dns.message.QueryMessage):
            raise dns.message.NotQueryResponse
        chain = response.resolve_chaining()
    except dns.exception.DNSException as exc:
        return Status.FAILED, f"{asked}: unusable answer: {exc} ({where})", 0
    rrset: dns.rrset.RRset | None = chain.answer
    if not rrset:
        return (
            Status.FAILED,
            f"{asked}: no answer (NOERROR with no {spec.record} record, {where})",
            0,
        )
    got = [_form(rdata) for rdata in rrset]
    via = f" via {chain.canonical_name}" if chain.cnames else ""
    expected = dict.fromkeys(normalize(spec.record, item) for item in spec.expect)
    missing = [item for item in expected if item not in got]
    if missing:
        return (
            Status.ERROR,
            f"{asked}: expected {_shown(missing)}, got {_shown(got)}{via} ({where})",
            len(got),
        )
    return Status.OK, f"{asked}: {_shown(got)}{via} ({where})", len(got)


async def check_dns(spec: DnsSpec, ctx: CheckContext) -> CheckResult:
    """Ask a DNS server for a record of ``query``; optionally require answers in ``expect``."""
    try:
        server = await _server_address(spec, ctx)
    except OSError as exc:
        return CheckResult(
            Status.FAILED, f"cannot resolve server {spec.server}: {exc.strerror or exc}"
        )
    qname = query_name(spec.query, spec.record)
    query = dns.message.make_query(qname, spec.record)
    where = f"{server} port {spec.port}"
    ctx.stage = f"waiting for an answer from {where} ({spec.protocol})"
    t0 = ctx.clock.monotonic()
    try:
        if spec.protocol == "tcp":
            response = await dns.asyncquery.tcp(query, server, port=spec.port)
        else:
            response, _ = await dns.asyncquery.udp_with_fallback(query, server, port=spec.port)
    except ConnectionRefusedError:
        return CheckResult(Status.FAILED, f"connection refused ({where}, {spec.protocol})")
    except OSError as exc:
        return CheckResult(Status.FAILED, f"{exc.strerror or exc} ({where}, {spec.protocol})")
    except (dns.exception.DNSException, EOFError, ValueError) as exc:
        # dnspython raises a DNSException for a malformed message, EOFError for a
        # TCP stream cut inside one.
        reason = str(exc) or type(exc).__name__
        return CheckResult(Status.FAILED, f"bad response from {where}: {reason}")
    elapsed_ms = round((ctx.clock.monotonic() - t0) * 1000, 3)
    status, message, answers = _judge(spec, qname, response, where)
    metrics = {
        "rcode": float(response.rcode()),
        "answers": float(answers),
        "response_time_ms": elapsed_ms,
    }
    return CheckResult(status, message, metrics)
