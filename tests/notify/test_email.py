"""The e-mail channel against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from email.message import EmailMessage
from email.policy import SMTPUTF8
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import trustme

from pymon.config.schema import EmailChannel
from pymon.model import Notice, NoticeKind, Status
from pymon.notify import tokens
from pymon.notify.base import DeliveryError, NoticeContext
from pymon.notify.email import SUBJECT_MAX, EmailSender
from pymon.notify.smtp import send_message
from pymon.notify.templates import Templates, format_duration
from tests.support.mail import MailSink
from tests.support.servers import free_port

OPENED = 1_714_533_120.0  # 2024-05-01T03:12:00Z
INCIDENT = "inc-7"
TOKEN = tokens.AckTokens(b"k" * 32).token(INCIDENT)
PASSWORD = "Tr0ub4dor&3-secret"


def make_config(port: int, **overrides: Any) -> EmailChannel:
    return EmailChannel.model_validate(
        {
            "type": "email",
            "host": "127.0.0.1",
            "port": port,
            "tls": "none",
            "from": "pymon@example.org",
            "to": ["ops@example.org"],
            "timeout": 5,
            **overrides,
        }
    )


def make_notice(**overrides: Any) -> Notice:
    fields: dict[str, Any] = {
        "key": tokens.thread_root_key(INCIDENT),
        "service": "web",
        "kind": NoticeKind.PROBLEM,
        "at": OPENED + 720,
        "status": Status.ERROR,
        "message": "HTTP 503 Service Unavailable",
        "channels": ("mail",),
        "incident": INCIDENT,
        "metrics": {"status_code": 503.0, "response_time_ms": 12.5},
        "since": OPENED,
    }
    fields.update(overrides)
    return Notice(**fields)


def make_ctx(**overrides: Any) -> NoticeContext:
    fields: dict[str, Any] = {
        "instance": "prod",
        "organization": "ACME",
        "host": "mon1.example.org",
        "service_type": "http",
        "service_uri": "pymon://prod/web",
        "service_url": "https://mon.example.org/services/web",
        "check": {"url": "https://www.example.org/health"},
        "ack_token": TOKEN,
        "ack_address": f"ack+{TOKEN}@example.org",
    }
    fields.update(overrides)
    return NoticeContext(**fields)


@pytest.fixture
def sink() -> Iterator[MailSink]:
    with MailSink() as running:
        yield running


@pytest.fixture
def sender(sink: MailSink) -> EmailSender:
    return EmailSender("mail", make_config(sink.port), Templates())


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


async def deliver(sender: EmailSender, sink: MailSink, notice: Notice, ctx: NoticeContext) -> Any:
    """Send one notice and return what the server received."""
    before = len(sink.messages)
    await sender.send(notice, ctx)
    return (await sink.await_for(before + 1))[before]


def parts(message: EmailMessage) -> dict[str, str]:
    found = {}
    for part in message.walk():
        if not part.is_multipart():
            assert isinstance(part, EmailMessage)
            # The parser keeps the wire's CRLF line ends; compare in Python's.
            found[part.get_content_type()] = part.get_content().replace("\r\n", "\n")
    return found


# --- subject and headers ---------------------------------------------------------


async def test_subject_starts_with_organization_and_status(
    sender: EmailSender, sink: MailSink
) -> None:
    got = await deliver(sender, sink, make_notice(), make_ctx())
    assert got.message["Subject"] == "[ACME] ERROR: web - HTTP 503 Service Unavailable"


async def test_subject_starts_with_host_without_organization(
    sender: EmailSender, sink: MailSink
) -> None:
    got = await deliver(sender, sink, make_notice(), make_ctx(organization=""))
    assert got.message["Subject"].startswith("[mon1.example.org] ERROR: web - ")


async def test_non_ascii_service_name_is_encoded_and_decodes_back(
    sender: EmailSender, sink: MailSink
) -> None:
    service = "Zürich café \u2013 東京"
    ctx = make_ctx(service_uri=f"pymon://prod/{service}")
    got = await deliver(sender, sink, make_notice(service=service, message="lent"), ctx)
    got.raw.decode("ascii")  # RFC 2047 in headers, a transfer encoding in bodies
    assert got.message["Subject"] == f"[ACME] ERROR: {service} - lent"
    assert got.message["X-Pymon-Service"] == f"pymon://prod/{service}"
    assert service in parts(got.message)["text/plain"]


async def test_multiline_message_is_one_line_in_subject(
    sender: EmailSender, sink: MailSink
) -> None:
    notice = make_notice(message="line one\r\n\tline two\nline three")
    got = await deliver(sender, sink, notice, make_ctx())
    assert got.message["Subject"] == "[ACME] ERROR: web - line one line two line three"


async def test_long_subject_is_capped_with_an_ellipsis(sender: EmailSender, sink: MailSink) -> None:
    got = await deliver(sender, sink, make_notice(message="word " * 500), make_ctx())
    subject = got.message["Subject"]
    assert len(subject) <= SUBJECT_MAX
    assert subject.endswith("…")


def subject_of(length: int, word: str = "refused") -> str:
    """A notice message making the subject ``length`` characters, words of ``word``."""
    text = (f"{word} " * 20)[: length - len("[ACME] ERROR: web - ")]
    return text[:-1] + "x" if text.endswith(" ") else text


@pytest.mark.parametrize("length", [70, 73, 77])
async def test_a_subject_just_over_one_line_folds_after_its_first_words(
    sender: EmailSender, sink: MailSink, length: int
) -> None:
    # Left to the standard library, 70 to 77 characters went whole onto the next
    # line ("Subject:\r\n [ACME] ..."), which some readers show with a leading space.
    message = subject_of(length)
    got = await deliver(sender, sink, make_notice(message=message), make_ctx())
    header = re.search(rb"^Subject:.*?\r\n(?! )", got.raw, re.M | re.S)
    assert header is not None
    first, *rest = header[0].split(b"\r\n")[:-1]
    assert re.fullmatch(rb"Subject: \[ACME\] ERROR: web - \S.*", first)
    assert all(len(line) <= 78 for line in [first, *rest])
    assert got.message["Subject"] == f"[ACME] ERROR: web - {message}"


def test_a_subject_is_folded_after_its_first_words_under_smtputf8_too(
    sender: EmailSender,
) -> None:
    """aiosmtplib flattens with SMTPUTF8 when an address is not ASCII: raw UTF-8, same fold."""
    message = subject_of(74, word="café")
    raw = sender.compose(make_notice(message=message), make_ctx()).as_bytes(policy=SMTPUTF8)
    assert re.search(rb"^Subject: \[ACME\] ERROR: web - caf\xc3\xa9 ", raw, re.M)
    assert b"Subject:\r\n" not in raw


async def test_headers_identify_the_notice(sender: EmailSender, sink: MailSink) -> None:
    notice = make_notice()
    got = await deliver(sender, sink, notice, make_ctx())
    headers = got.message
    assert headers["From"] == "pymon@example.org"
    assert headers["To"] == "ops@example.org"
    assert got.rcpt_tos == ["ops@example.org"]
    assert parsedate_to_datetime(headers["Date"]).timestamp() == notice.at
    assert headers["Message-ID"] == tokens.message_id(notice.key, "mail", TOKEN, "example.org")
    assert headers["Reply-To"] == f"ack+{TOKEN}@example.org"
    assert headers["X-Pymon-Service"] == "pymon://prod/web"
    assert headers["X-Pymon-Status"] == "ERROR"
    assert headers["X-Pymon-Incident"] == INCIDENT
    assert headers["X-Pymon-Token"] == TOKEN
    assert headers["X-Pymon-Notice"] == notice.key
    assert headers["Auto-Submitted"] == "auto-generated"


async def test_message_id_carries_the_ack_token(sender: EmailSender, sink: MailSink) -> None:
    got = await deliver(sender, sink, make_notice(), make_ctx())
    assert tokens.tokens_in(got.message["Message-ID"]) == [TOKEN]


async def test_notices_of_an_incident_thread_under_the_first_problem(
    sender: EmailSender, sink: MailSink
) -> None:
    ctx = make_ctx()
    root = make_notice()
    followers = [
        make_notice(key=f"{INCIDENT}:problem:2"),
        make_notice(key=f"{INCIDENT}:escalation:1", kind=NoticeKind.ESCALATION),
        make_notice(key=f"{INCIDENT}:recovery:1", kind=NoticeKind.RECOVERY, status=Status.OK),
    ]
    first = await deliver(sender, sink, root, ctx)
    assert first.message["In-Reply-To"] is None
    assert first.message["References"] is None
    for notice in followers:
        got = await deliver(sender, sink, notice, ctx)
        assert got.message["In-Reply-To"] == first.message["Message-ID"]
        assert got.message["References"] == first.message["Message-ID"]
        assert got.message["Message-ID"] != first.message["Message-ID"]


async def test_notice_without_incident_has_no_thread_or_ack_headers(
    sender: EmailSender, sink: MailSink
) -> None:
    notice = make_notice(key="svc:flapping_started:1", incident=None, since=None)
    got = await deliver(sender, sink, notice, make_ctx(ack_token=None, ack_address=None))
    for name in ("In-Reply-To", "References", "Reply-To", "X-Pymon-Incident", "X-Pymon-Token"):
        assert got.message[name] is None, name
    assert "acknowledge" not in parts(got.message)["text/plain"]


# --- bodies ------------------------------------------------------------------------


async def test_text_and_html_alternatives_say_what_happened(
    sender: EmailSender, sink: MailSink
) -> None:
    got = await deliver(sender, sink, make_notice(), make_ctx())
    assert got.message.get_content_type() == "multipart/alternative"
    bodies = parts(got.message)
    assert set(bodies) == {"text/plain", "text/html"}
    for body in bodies.values():
        assert "HTTP 503 Service Unavailable" in body
        assert "2024-05-01T03:12:00Z" in body
        assert "12m" in body
        assert "pymon://prod/web" in body
        assert "https://mon.example.org/services/web" in body
        assert "https://www.example.org/health" in body
        assert "503" in body
        assert "response_time_ms" in body
    assert 'reply with "ack" on the first line' in bodies["text/plain"]


async def test_recovery_says_recovered_and_for_how_long(
    sender: EmailSender, sink: MailSink
) -> None:
    notice = make_notice(
        key=f"{INCIDENT}:recovery:1",
        kind=NoticeKind.RECOVERY,
        status=Status.OK,
        at=OPENED + 3_900,
        message="HTTP 200 OK",
    )
    got = await deliver(sender, sink, notice, make_ctx(service_type="tcp"))
    text = parts(got.message)["text/plain"]
    assert text.startswith("RECOVERED: web is OK again")
    assert "since 2024-05-01T03:12:00Z, for 1h 5m" in text
    assert "acknowledge" not in text


async def test_html_escapes_hostile_names(sender: EmailSender, sink: MailSink) -> None:
    hostile = "<script>alert(1)</script>"
    ctx = make_ctx(check={"url": 'javascript:alert(1)"'}, service_url="javascript:alert(2)")
    got = await deliver(sender, sink, make_notice(service=hostile, message=hostile), ctx)
    bodies = parts(got.message)
    assert "<script>" not in bodies["text/html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in bodies["text/html"]
    assert 'href="javascript:' not in bodies["text/html"]
    assert hostile in bodies["text/plain"]


async def test_raw_message_has_crlf_lines_within_998_bytes(
    sender: EmailSender, sink: MailSink
) -> None:
    long_name = "x" * 3_000
    notice = make_notice(service=long_name, message="é" * 2_000 + "\n" + "y" * 5_000)
    ctx = make_ctx(service_uri=f"pymon://prod/{long_name}")
    got = await deliver(sender, sink, notice, ctx)
    assert got.raw.endswith(b"\r\n")
    lines = got.raw.split(b"\r\n")
    assert all(b"\n" not in line and b"\r" not in line for line in lines)
    assert max(len(line) for line in lines) <= 998
    assert got.message["Date"]


async def test_newlines_in_service_or_message_inject_no_header(
    sender: EmailSender, sink: MailSink
) -> None:
    notice = make_notice(
        service="web\r\nBcc: thief@example.net",
        message="down\r\nBcc: x@y\r\nX-Evil: 1\n\n<b>body</b>",
    )
    ctx = make_ctx(service_uri="pymon://prod/web\r\nX-Evil: 2")
    got = await deliver(sender, sink, notice, ctx)
    assert got.message["Bcc"] is None
    assert got.message["X-Evil"] is None
    assert got.rcpt_tos == ["ops@example.org"]
    head = got.raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head
    assert b"\r\nX-Evil:" not in head


# --- templates ---------------------------------------------------------------------


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


async def test_user_template_for_a_status_wins(sink: MailSink, tmp_path: Path) -> None:
    write(tmp_path, "email/error.txt.j2", "custom {{ status }} for {{ notice.service }}\n")
    sender = EmailSender("mail", make_config(sink.port), Templates(tmp_path))
    got = await deliver(sender, sink, make_notice(), make_ctx(service_type="tcp"))
    bodies = parts(got.message)
    assert bodies["text/plain"] == "custom error for web\n"
    assert "HTTP 503 Service Unavailable" in bodies["text/html"]  # still the shipped one


async def test_user_template_for_type_and_status_beats_status(
    sink: MailSink, tmp_path: Path
) -> None:
    write(tmp_path, "email/error.txt.j2", "by status\n")
    write(tmp_path, "email/http-error.txt.j2", "by type and status\n")
    write(tmp_path, "email/http.txt.j2", "by type\n")
    sender = EmailSender("mail", make_config(sink.port), Templates(tmp_path))
    http = await deliver(sender, sink, make_notice(), make_ctx(service_type="http"))
    tcp = await deliver(sender, sink, make_notice(), make_ctx(service_type="tcp"))
    http_ok = await deliver(
        sender, sink, make_notice(status=Status.OK), make_ctx(service_type="http")
    )
    assert parts(http.message)["text/plain"] == "by type and status\n"
    assert parts(tcp.message)["text/plain"] == "by status\n"
    assert parts(http_ok.message)["text/plain"] == "by type\n"


async def test_user_template_can_extend_the_shipped_layout(sink: MailSink, tmp_path: Path) -> None:
    write(
        tmp_path,
        "email/default.txt.j2",
        '{% extends "email/_base.txt.j2" %}\n'
        "{% block check %}\nRunbook:  https://wiki.example.org/{{ notice.service }}\n"
        "{% endblock %}\n",
    )
    sender = EmailSender("mail", make_config(sink.port), Templates(tmp_path))
    got = await deliver(sender, sink, make_notice(), make_ctx(service_type="tcp"))
    text = parts(got.message)["text/plain"]
    assert "Runbook:  https://wiki.example.org/web" in text
    assert "HTTP 503 Service Unavailable" in text


def test_template_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "email/default.txt.j2", "fine\n{% if %}\n")
    sender = EmailSender("mail", make_config(25), Templates(tmp_path))
    with pytest.raises(DeliveryError) as caught:
        sender.compose(make_notice(), make_ctx(service_type="tcp"))
    assert f"{path}:2:" in str(caught.value)
    assert caught.value.permanent


def test_template_misspelt_variable_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "email/error.txt.j2", "ok\nok\n{{ notice.sevrice }}\n")
    sender = EmailSender("mail", make_config(25), Templates(tmp_path))
    with pytest.raises(DeliveryError) as caught:
        sender.compose(make_notice(), make_ctx(service_type="tcp"))
    assert f"{path}:3:" in str(caught.value)
    assert "sevrice" in str(caught.value)
    assert caught.value.permanent


def test_check_lists_every_broken_user_template(tmp_path: Path) -> None:
    bad = write(tmp_path, "email/error.txt.j2", "{{ oops\n")
    orphan = write(tmp_path, "email/ok.txt.j2", '{% extends "email/missing.txt.j2" %}\n')
    write(tmp_path, "email/warn.txt.j2", '{% extends "email/_base.txt.j2" %}\n')
    errors = Templates(tmp_path).check()
    assert len(errors) == 2
    assert errors[0].startswith(f"{bad}:1: ")
    assert errors[1].startswith(f"{orphan}: ")
    assert "email/missing.txt.j2" in errors[1]


def test_check_reports_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "email" / "warn.txt.j2"
    path.parent.mkdir()
    path.write_bytes(b"caf\xe9\n")
    (error,) = Templates(tmp_path).check()
    assert error.startswith(f"{path}: not UTF-8")


def test_check_type_never_reaches_the_loader_as_a_path() -> None:
    names = Templates.candidates("email", "txt", "../../etc/passwd", "error")
    assert names == ["email/error.txt.j2", "email/default.txt.j2"]


@pytest.mark.parametrize(
    ("seconds", "spoken"),
    [(0, "0s"), (45, "45s"), (150, "2m 30s"), (720, "12m"), (3_900, "1h 5m"), (90_000, "1d 1h")],
)
def test_duration_reads_like_speech(seconds: float, spoken: str) -> None:
    assert format_duration(seconds) == spoken


def test_check_reports_a_missing_directory(tmp_path: Path) -> None:
    assert Templates(tmp_path / "nope").check() == [
        f"{tmp_path / 'nope'}: templates directory does not exist"
    ]


def test_shipped_templates_render_for_every_status_and_kind() -> None:
    sender = EmailSender("mail", make_config(25), Templates())
    for service_type in ("http", "tcp"):
        for status in Status:
            for kind in NoticeKind:
                notice = make_notice(status=status, kind=kind)
                ctx = make_ctx(service_type=service_type, check={})
                assert sender.compose(notice, ctx)["X-Pymon-Status"] == status.value.upper()


# --- SMTP failures -----------------------------------------------------------------


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept and never say a word (until the client gives up)."""
    await reader.read()
    writer.close()


async def echoes_password(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A hostile server that quotes the password back in its refusal."""
    writer.write(b"220 evil.test ESMTP\r\n")
    while line := await reader.readline():
        verb = line.split(b" ", 1)[0].strip().upper()
        if verb == b"EHLO":
            writer.write(b"250-evil.test\r\n250 AUTH PLAIN\r\n")
        elif verb == b"AUTH":
            secret = base64.b64decode(line.split()[-1]).split(b"\0")[-1]
            writer.write(b"535 5.7.8 wrong password " + secret + b"\r\n")
        else:
            writer.write(b"221 bye\r\n")
            break
        await writer.drain()
    writer.close()


async def accepts_then_ignores_quit(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Takes the message (250 after DATA), then never answers QUIT."""
    writer.write(b"220 slow.test ESMTP\r\n")
    in_data = False
    while line := await reader.readline():
        verb = line[:4].upper()
        if in_data:
            if line == b".\r\n":
                in_data = False
                writer.write(b"250 2.0.0 queued\r\n")
        elif verb == b"DATA":
            in_data = True
            writer.write(b"354 go ahead\r\n")
        elif verb != b"QUIT":
            writer.write(b"250 slow.test\r\n")
        await writer.drain()
    writer.close()


@pytest.fixture
async def scripted(request: pytest.FixtureRequest) -> AsyncIterator[int]:
    script: Script = request.param
    server = await asyncio.start_server(script, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def failure(config: EmailChannel) -> DeliveryError:
    sender = EmailSender("mail", config, Templates())
    with pytest.raises(DeliveryError) as caught:
        await sender.send(make_notice(), make_ctx())
    return caught.value


async def test_refused_connection_is_not_permanent() -> None:
    port = free_port()
    error = await failure(make_config(port, username="pymon", password=PASSWORD))
    assert str(error) == f"smtp 127.0.0.1:{port}: connection refused"
    assert not error.permanent


async def test_refused_recipient_is_permanent() -> None:
    with MailSink(reply_to_rcpt="550 5.1.1 no such user") as sink:
        error = await failure(make_config(sink.port))
    assert f"smtp 127.0.0.1:{sink.port}: recipient refused: 550 5.1.1 no such user" in str(error)
    assert error.permanent


async def test_temporary_refusal_is_not_permanent_and_a_retry_delivers() -> None:
    with MailSink(fail_first=1) as sink:
        error = await failure(make_config(sink.port))
        assert "451" in str(error)
        assert not error.permanent
        await EmailSender("mail", make_config(sink.port), Templates()).send(
            make_notice(), make_ctx()
        )
        assert len(await sink.await_for(1)) == 1


async def test_login_with_the_right_password_delivers() -> None:
    with MailSink(require_auth=("pymon", PASSWORD)) as sink:
        config = make_config(sink.port, username="pymon", password=PASSWORD)
        await EmailSender("mail", config, Templates()).send(make_notice(), make_ctx())
        (got,) = await sink.await_for(1)
    assert got.login == "pymon"


async def test_wrong_password_is_permanent_and_not_quoted() -> None:
    with MailSink(require_auth=("pymon", "another")) as sink:
        error = await failure(make_config(sink.port, username="pymon", password=PASSWORD))
    assert "login failed: 535" in str(error)
    assert error.permanent
    assert PASSWORD not in str(error)


@pytest.mark.parametrize("scripted", [echoes_password], indirect=True)
async def test_password_quoted_by_the_server_is_masked(scripted: int) -> None:
    error = await failure(make_config(scripted, username="pymon", password=PASSWORD))
    assert "login failed: 535" in str(error)
    assert PASSWORD not in str(error)
    assert error.__cause__ is None  # the server's own text is not chained either


@pytest.mark.parametrize("scripted", [silent], indirect=True)
async def test_silent_server_times_out(scripted: int) -> None:
    error = await failure(make_config(scripted, timeout=0.5, password=PASSWORD, username="u"))
    assert str(error) == f"smtp 127.0.0.1:{scripted}: timed out after 0.5s"
    assert not error.permanent


async def test_starttls_required_but_not_offered_fails(sink: MailSink) -> None:
    error = await failure(make_config(sink.port, tls="starttls"))
    assert "STARTTLS" in str(error)
    assert sink.messages == []


async def test_missing_ca_file_is_named(sink: MailSink, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    error = await failure(make_config(sink.port, tls="starttls", ca_file=str(missing)))
    assert f"cannot load {missing}" in str(error)


@pytest.mark.parametrize("scripted", [accepts_then_ignores_quit], indirect=True)
async def test_server_silent_after_accepting_still_counts_as_delivered(scripted: int) -> None:
    """A QUIT that never gets its answer must not make the outbox send it again."""
    config = make_config(scripted, timeout=0.5)
    await EmailSender("mail", config, Templates()).send(make_notice(), make_ctx())


# --- TLS ---------------------------------------------------------------------------


async def test_starttls_with_the_ca_file_delivers_encrypted(ca: trustme.CA, ca_file: str) -> None:
    with MailSink(starttls=ca) as sink:
        config = make_config(sink.port, tls="starttls", ca_file=ca_file)
        await EmailSender("mail", config, Templates()).send(make_notice(), make_ctx())
        (got,) = await sink.await_for(1)
    assert got.tls


async def test_starttls_without_the_ca_file_fails_on_the_certificate(ca: trustme.CA) -> None:
    with MailSink(starttls=ca) as sink:
        error = await failure(make_config(sink.port, tls="starttls"))
        assert sink.messages == []
    assert "certificate" in str(error)
    assert not error.permanent


async def test_auto_upgrades_when_the_server_offers_starttls(ca: trustme.CA, ca_file: str) -> None:
    with MailSink(starttls=ca) as sink:
        config = make_config(sink.port, tls="auto", ca_file=ca_file)
        await EmailSender("mail", config, Templates()).send(make_notice(), make_ctx())
        (got,) = await sink.await_for(1)
    assert got.tls


async def test_auto_sends_in_clear_when_starttls_is_not_offered(sink: MailSink) -> None:
    await EmailSender("mail", make_config(sink.port, tls="auto"), Templates()).send(
        make_notice(), make_ctx()
    )
    (got,) = await sink.await_for(1)
    assert not got.tls


async def test_implicit_tls_delivers(ca: trustme.CA, ca_file: str) -> None:
    with MailSink(implicit_tls=ca) as sink:
        config = make_config(sink.port, tls="tls", ca_file=ca_file)
        await EmailSender("mail", config, Templates()).send(make_notice(), make_ctx())
        (got,) = await sink.await_for(1)
    assert got.tls


async def test_verify_tls_off_accepts_an_unknown_certificate(ca: trustme.CA) -> None:
    with MailSink(starttls=ca) as sink:
        config = make_config(sink.port, tls="starttls", verify_tls=False)
        await EmailSender("mail", config, Templates()).send(make_notice(), make_ctx())
        (got,) = await sink.await_for(1)
    assert got.tls


async def test_send_message_takes_recipients_from_the_message(sink: MailSink) -> None:
    message = EmailMessage()
    message["From"] = "pymon@example.org"
    message["To"] = "alice@example.org"
    message["Subject"] = "ack confirmed"
    message.set_content("done")
    await send_message(make_config(sink.port), message)
    (got,) = await sink.await_for(1)
    assert got.rcpt_tos == ["alice@example.org"]
    assert re.fullmatch(r"ack confirmed", got.message["Subject"])
