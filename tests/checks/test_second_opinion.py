"""Second opinion: pymon and Debian's monitoring-plugins judge the same target alike.

Each row starts one real target, runs a pymon check (through the rules, with the
type's default thresholds, as the daemon and ``pymon check`` do) and the matching
plugin against it at the same time, and asserts both give the row's verdict:
plugin exit 0 OK is ``ok``, 1 WARNING is ``warn``, 2 CRITICAL is ``error`` or
``failed``. Where the two tools differ by design, the plugin gets the options that
express pymon's policy (each is explained where it is defined); the differences
themselves are pinned by :func:`test_documented_difference` and listed in
docs/checks.md ("Second opinion").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import trustme

from pymon.checks import check_type
from pymon.engine.rules import evaluate
from pymon.model import Status
from tests.checks.second_opinion import (
    CLOSED,
    FTP,
    PLUGINS,
    SILENT,
    SMTP,
    UNTRUSTED,
    WEBSITE,
    Endpoint,
    Kit,
    Plugin,
    PluginRun,
    Target,
    Verdict,
    dns,
    greeting,
    https,
    missing_programs,
    plugin,
    run_plugin,
    verdict_of,
)
from tests.checks.targets import RawServer, RunCheck
from tests.conftest import need

OK, WARNING, CRITICAL = Verdict.OK, Verdict.WARNING, Verdict.CRITICAL

Spec = Callable[[Endpoint], Mapping[str, object]]


def _ok_status_codes() -> str:
    limits = check_type("http").thresholds["status_code"]
    return ",".join(str(code) for code in range(100, 600) if limits.classify(code) is Status.OK)


# check_http alone calls every 4xx WARNING and 5xx CRITICAL; pymon's table calls
# 404 an error. -e lists the codes pymon calls ok (taken from its table), and
# check_http then calls any other code CRITICAL. (-e looks for each item anywhere
# in the status line; the test server's reason phrases hold no digits.)
HTTP_POLICY = ("-e", _ok_status_codes())

# check_http -C W,C counts whole days left (floored): OK above W, WARNING above C,
# else CRITICAL. pymon: ok from 14 days, warn from 3, error below. So 13,2, not
# 14,3 (which would warn at 14.5 days left and be critical at 3.5).
CERT_POLICY = "13,2"

# check_tcp and check_ftp (the same program) call a reply without the -e text
# WARNING by default; pymon calls it an error. -M crit makes it CRITICAL.
MISMATCH_IS_CRITICAL = ("-M", "crit")

# check_smtp (a greeting other than 220) and check_dig (an answer without the -a
# address, or dig failing) say WARNING and have no option to say otherwise; pymon
# calls these error or failed. negate maps their WARNING to CRITICAL; nothing else
# in these commands can warn (no -w is given).
WARNING_IS_CRITICAL = ("negate", "-w", "CRITICAL")

# A server that accepts and stays silent: both sides get a short timeout.
HANG = 1

DNS = dns(["--local=/pymon.test/", "--host-record=www.pymon.test,192.0.2.10"])


@dataclass(frozen=True)
class Pair:
    """One target, the pymon check and the plugin command that look at it."""

    target: Target
    check: str
    spec: Spec
    plugin: Plugin
    within: float = 3.0


def url(path: str, **keys: object) -> Spec:
    """An http spec for ``path`` on the target."""
    return lambda at: {"url": f"http://127.0.0.1:{at.port}{path}", **keys}


def on_port(**keys: object) -> Spec:
    """A spec with the target's ``host`` and ``port`` and ``keys``."""
    return lambda at: {"host": "127.0.0.1", "port": at.port, **keys}


def tls_spec(at: Endpoint) -> Mapping[str, object]:
    """A tls spec that verifies the target's ``localhost`` certificate with the test CA."""
    return {"host": "127.0.0.1", "port": at.port, "server_name": "localhost", "ca_file": at.ca_file}


def https_spec(at: Endpoint) -> Mapping[str, object]:
    """An http spec for the target over https, as ``localhost``, trusting the test CA."""
    return {"url": f"https://localhost:{at.port}/", "ca_file": at.ca_file}


def asks(name: str, expect: str) -> Spec:
    """A dns spec asking the target for ``name`` A, expecting ``expect`` among the answers."""
    return lambda at: {"query": name, "server": "127.0.0.1", "port": at.port, "expect": expect}


def check_http(*args: str) -> Plugin:
    """check_http with pymon's status-code policy."""
    return plugin("check_http", *args, *HTTP_POLICY)


def check_cert(limits: str = CERT_POLICY) -> Plugin:
    """check_http -C ``limits`` on the target's certificate, as ``localhost`` (SNI)."""
    return plugin("check_http", "-I", "127.0.0.1", "--sni", "-C", limits, host="localhost")


def cert_pair(days: float, limits: str = CERT_POLICY) -> Pair:
    """pymon's tls check and check_http -C on a certificate expiring in ``days``."""
    return Pair(https(days), "tls", tls_spec, check_cert(limits))


def dns_pair(
    name: str, expect: str, target: Target = DNS, wrapper: tuple[str, ...] = WARNING_IS_CRITICAL
) -> Pair:
    """pymon's dns check and check_dig, asking for ``name`` A and expecting ``expect``."""
    check_dig = plugin("check_dig", "-l", name, "-T", "A", "-a", expect, wrapper=wrapper)
    return Pair(target, "dns", asks(name, expect), check_dig)


def hang(pair: Pair) -> Pair:
    """``pair`` with short timeouts on both sides, for a target that never answers."""
    return replace(pair, within=HANG, plugin=replace(pair.plugin, timeout=HANG))


SMTP_554 = greeting(b"554 5.3.2 No SMTP service here\r\n")
FTP_421 = greeting(b"421 Too many connections, try later.\r\n")
CHECK_SMTP = plugin("check_smtp", wrapper=WARNING_IS_CRITICAL)
CHECK_FTP = plugin("check_ftp", *MISMATCH_IS_CRITICAL)
CHECK_TCP_220 = plugin("check_tcp", "-e", "220", *MISMATCH_IS_CRITICAL)

SAME_VERDICT = [
    pytest.param(Pair(WEBSITE, "http", url("/"), check_http("-u", "/")), OK, id="http-200"),
    pytest.param(
        Pair(WEBSITE, "http", url("/missing"), check_http("-u", "/missing")),
        CRITICAL,
        id="http-404",
    ),
    pytest.param(
        Pair(WEBSITE, "http", url("/unavailable"), check_http("-u", "/unavailable")),
        CRITICAL,
        id="http-503",
    ),
    pytest.param(
        Pair(WEBSITE, "http", url("/", contains=["all fine"]), check_http("-s", "all fine")),
        OK,
        id="http-text-present",
    ),
    pytest.param(
        Pair(WEBSITE, "http", url("/", contains=["Goodbye"]), check_http("-s", "Goodbye")),
        CRITICAL,
        id="http-text-missing",
    ),
    pytest.param(Pair(CLOSED, "http", url("/"), check_http()), CRITICAL, id="http-refused"),
    pytest.param(hang(Pair(SILENT, "http", url("/"), check_http())), CRITICAL, id="http-silent"),
    pytest.param(cert_pair(90), OK, id="cert-90-days"),
    pytest.param(cert_pair(14.5), OK, id="cert-14.5-days"),
    pytest.param(cert_pair(10), WARNING, id="cert-10-days"),
    pytest.param(cert_pair(3.5), WARNING, id="cert-3.5-days"),
    pytest.param(cert_pair(2), CRITICAL, id="cert-2-days"),
    pytest.param(
        Pair(https(10), "http", https_spec, check_cert()), WARNING, id="https-cert-10-days"
    ),
    pytest.param(Pair(SILENT, "tcp", on_port(), plugin("check_tcp")), OK, id="tcp-open"),
    pytest.param(Pair(CLOSED, "tcp", on_port(), plugin("check_tcp")), CRITICAL, id="tcp-refused"),
    pytest.param(
        Pair(SMTP_554, "tcp", on_port(expect="220"), CHECK_TCP_220),
        CRITICAL,
        id="tcp-expect-mismatch",
    ),
    pytest.param(
        hang(Pair(SILENT, "tcp", on_port(expect="220"), CHECK_TCP_220)),
        CRITICAL,
        id="tcp-expect-silent",
    ),
    pytest.param(Pair(SMTP, "smtp", on_port(), CHECK_SMTP), OK, id="smtp-up"),
    pytest.param(Pair(SMTP_554, "smtp", on_port(), CHECK_SMTP), CRITICAL, id="smtp-554-greeting"),
    pytest.param(Pair(CLOSED, "smtp", on_port(), CHECK_SMTP), CRITICAL, id="smtp-refused"),
    pytest.param(hang(Pair(SILENT, "smtp", on_port(), CHECK_SMTP)), CRITICAL, id="smtp-silent"),
    pytest.param(Pair(FTP, "ftp", on_port(), CHECK_FTP), OK, id="ftp-up"),
    pytest.param(Pair(FTP_421, "ftp", on_port(), CHECK_FTP), CRITICAL, id="ftp-421-greeting"),
    pytest.param(Pair(CLOSED, "ftp", on_port(), CHECK_FTP), CRITICAL, id="ftp-refused"),
    pytest.param(hang(Pair(SILENT, "ftp", on_port(), CHECK_FTP)), CRITICAL, id="ftp-silent"),
    pytest.param(dns_pair("www.pymon.test", "192.0.2.10"), OK, id="dns-right-answer"),
    pytest.param(dns_pair("www.pymon.test", "192.0.2.99"), CRITICAL, id="dns-wrong-answer"),
    pytest.param(dns_pair("nx.pymon.test", "192.0.2.10"), CRITICAL, id="dns-nxdomain"),
    pytest.param(
        hang(dns_pair("www.pymon.test", "192.0.2.10", target=CLOSED)),
        CRITICAL,
        id="dns-no-server",
    ),
]


@dataclass(frozen=True)
class Seen:
    """What the plugin and pymon said about one target."""

    plugin: PluginRun
    status: Status
    message: str

    def __str__(self) -> str:
        said = f"plugin exit {self.plugin.code}: {self.plugin.output!r}"
        return f"{said}; pymon {self.status}: {self.message}"


RunBoth = Callable[[Pair], Awaitable[Seen]]


@pytest.fixture
async def run_both(
    ca: trustme.CA, raw_server: RawServer, tmp_path: Path, check: RunCheck
) -> AsyncIterator[RunBoth]:
    """Start a pair's target, then run its pymon check and its plugin side by side."""
    kit = Kit(ca, raw_server, tmp_path)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    async with contextlib.AsyncExitStack() as stack:

        async def run(pair: Pair) -> Seen:
            need(PLUGINS.is_dir(), f"{PLUGINS} missing (Debian: monitoring-plugins)")
            missing = missing_programs(pair.target, pair.plugin)
            need(not missing, f"missing {', '.join(missing)}")
            port = await stack.enter_async_context(pair.target.start(kit))
            at = Endpoint(port, str(ca_file))
            ran, result = await asyncio.gather(
                run_plugin(pair.plugin.argv(port)),
                check(pair.check, pair.spec(at), within=pair.within),
            )
            status, message = evaluate(result, check_type(pair.check).thresholds)
            return Seen(ran, status, message)

        yield run


@pytest.mark.parametrize(("pair", "verdict"), SAME_VERDICT)
async def test_same_verdict(pair: Pair, verdict: Verdict, run_both: RunBoth) -> None:
    """The plugin, given the options that state pymon's policy, and pymon agree."""
    seen = await run_both(pair)
    assert (seen.plugin.code, verdict_of(seen.status)) == (verdict, verdict), str(seen)


DOCUMENTED_DIFFERENCES = [
    pytest.param(
        Pair(WEBSITE, "http", url("/missing"), plugin("check_http", "-u", "/missing")),
        WARNING,
        Status.ERROR,
        id="check_http-calls-404-a-warning",
    ),
    pytest.param(
        cert_pair(14.5, "14,3"),
        WARNING,
        Status.OK,
        id="check_http-C-14,3-warns-at-14.5-days",
    ),
    pytest.param(
        cert_pair(3.5, "14,3"),
        CRITICAL,
        Status.WARN,
        id="check_http-C-14,3-is-critical-at-3.5-days",
    ),
    pytest.param(
        # check_http verifies neither the chain nor the name; -C only counts the days.
        Pair(UNTRUSTED, "tls", tls_spec, check_cert()),
        OK,
        Status.FAILED,
        id="check_http-C-accepts-an-untrusted-certificate",
    ),
    pytest.param(
        Pair(SMTP_554, "tcp", on_port(expect="220"), plugin("check_tcp", "-e", "220")),
        WARNING,
        Status.ERROR,
        id="check_tcp-calls-a-mismatch-a-warning",
    ),
    pytest.param(
        Pair(SMTP_554, "smtp", on_port(), plugin("check_smtp")),
        WARNING,
        Status.ERROR,
        id="check_smtp-calls-a-554-greeting-a-warning",
    ),
    pytest.param(
        Pair(FTP_421, "ftp", on_port(), plugin("check_ftp")),
        WARNING,
        Status.ERROR,
        id="check_ftp-calls-a-421-greeting-a-warning",
    ),
    pytest.param(
        dns_pair("www.pymon.test", "192.0.2.99", wrapper=()),
        WARNING,
        Status.ERROR,
        id="check_dig-calls-a-wrong-answer-a-warning",
    ),
    pytest.param(
        hang(dns_pair("www.pymon.test", "192.0.2.10", target=CLOSED, wrapper=())),
        WARNING,
        Status.FAILED,
        id="check_dig-calls-no-server-a-warning",
    ),
    pytest.param(
        # check_dig -a looks for the text in the answer line: 192.0.2.1 is "in" 192.0.2.10.
        dns_pair("www.pymon.test", "192.0.2.1", wrapper=()),
        OK,
        Status.ERROR,
        id="check_dig-a-matches-part-of-an-address",
    ),
]


@pytest.mark.parametrize(("pair", "plugin_says", "pymon_says"), DOCUMENTED_DIFFERENCES)
async def test_documented_difference(
    pair: Pair, plugin_says: Verdict, pymon_says: Status, run_both: RunBoth
) -> None:
    """Without the aligning options, the plugin differs from pymon as docs/checks.md says."""
    seen = await run_both(pair)
    assert (seen.plugin.code, seen.status) == (plugin_says, pymon_says), str(seen)
