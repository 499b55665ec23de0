"""Hostile and broken replies for the acknowledgement server.

Each case is a whole message as bytes (CRLF line ends, as on the wire), built
around the reply-threading header that carries a valid token, so that the damage
is met by the MIME reading and not refused earlier for want of a token. ``expect``
is the action the server must carry out, ``"refused"`` for a 5xx answer, or None
when either a 2xx or a 5xx answer is right (the point is: an answer, no crash).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

__all__ = ["NastyMail", "corpus"]

SENDER = b"alice@example.org"


@dataclass(frozen=True, slots=True)
class NastyMail:
    """One broken message and what the server must make of it."""

    name: str
    raw: bytes
    expect: str | None


def _mail(head: list[bytes], body: bytes, *, sender: bytes | None = SENDER) -> bytes:
    lines = [b"From: Alice <" + sender + b">"] if sender is not None else []
    lines += [b"To: ack@pymon.example", b"Subject: Re: [pymon] web ERROR", *head]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _nested(head: list[bytes], depth: int) -> bytes:
    """A message whose body is ``depth`` multiparts, one inside the other."""
    opening = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    closing = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    top = b"From: Alice <" + SENDER + b">\r\n" + b"\r\n".join(head) + b"\r\n"
    return top + opening + b"Content-Type: text/plain\r\n\r\nunack\r\n" + closing


def corpus(reply_to: bytes) -> list[NastyMail]:
    """The cases; ``reply_to`` is an ``In-Reply-To`` header line naming the incident."""
    irt = [reply_to, b"MIME-Version: 1.0"]
    return [
        NastyMail(
            "broken-multipart-boundary",
            _mail(
                [*irt, b'Content-Type: multipart/mixed; boundary="abc"'],
                b"--xyz\r\nContent-Type: text/plain\r\n\r\nunack\r\n--xy",
            ),
            None,
        ),
        NastyMail(
            "base64-garbage",
            _mail(
                [*irt, b"Content-Type: text/plain", b"Content-Transfer-Encoding: base64"],
                b"!!!@@@###$$$ not base64 at all ===\r\n",
            ),
            None,
        ),
        NastyMail(
            "base64-body",
            _mail(
                [*irt, b"Content-Type: text/plain", b"Content-Transfer-Encoding: base64"],
                base64.encodebytes(b"unack sorry, wrong one\n").replace(b"\n", b"\r\n"),
            ),
            "unack",
        ),
        NastyMail(
            "unknown-charset",
            _mail(
                [*irt, b'Content-Type: text/plain; charset="x-klingon-7"'],
                b"unack \xff\xfe tlhIngan\r\n",
            ),
            "unack",
        ),
        NastyMail(
            "non-text-codec-charset",
            _mail([*irt, b"Content-Type: text/plain; charset=zlib"], b"unack\r\n"),
            "unack",
        ),
        NastyMail(
            "html-only",
            _mail(
                [*irt, b"Content-Type: text/html; charset=utf-8"],
                b"<html><head><style>p{}</style></head><body><div>unack&nbsp;my bad</div>"
                b'<div class="gmail_quote">On Mon, Alice wrote:<blockquote>ack</blockquote>'
                b"</div></body></html>\r\n",
            ),
            "unack",
        ),
        NastyMail(
            "html-unclosed-script",
            _mail([*irt, b"Content-Type: text/html"], b"<script>unack <b>\r\n"),
            "ack",
        ),
        NastyMail(
            "quoted-printable-soft-breaks",
            _mail(
                [
                    *irt,
                    b"Content-Type: text/plain; charset=utf-8",
                    b"Content-Transfer-Encoding: quoted-printable",
                ],
                b"un=\r\nack J=C3=B6rg is on it=\r\n, really=3D=\r\n",
            ),
            "unack",
        ),
        NastyMail(
            "multipart-alternative",
            _mail(
                [*irt, b'Content-Type: multipart/alternative; boundary="alt"'],
                b"--alt\r\nContent-Type: text/plain\r\n\r\nunack\r\n"
                b"--alt\r\nContent-Type: text/html\r\n\r\n<p>ack</p>\r\n--alt--\r\n",
            ),
            "unack",
        ),
        NastyMail(
            "attachment-only",
            _mail(
                [*irt, b'Content-Type: multipart/mixed; boundary="m"'],
                b"--m\r\nContent-Type: application/octet-stream\r\n"
                b'Content-Disposition: attachment; filename="x.bin"\r\n\r\n\x00\x01\x02\r\n'
                b"--m--\r\n",
            ),
            "ack",
        ),
        NastyMail(
            "forwarded-message-only",
            _mail(
                [*irt, b'Content-Type: multipart/mixed; boundary="m"'],
                b"--m\r\nContent-Type: message/rfc822\r\n\r\n"
                b"From: bob@example.org\r\nSubject: x\r\n\r\nunack\r\n--m--\r\n",
            ),
            "ack",
        ),
        NastyMail("no-from", _mail(irt, b"ack\r\n", sender=None), "refused"),
        NastyMail(
            "two-from",
            _mail([b"From: mallory@evil.example", *irt], b"ack\r\n"),
            "refused",
        ),
        NastyMail(
            "from-group-without-address",
            b"From: Undisclosed recipients:;\r\n" + reply_to + b"\r\n\r\nack\r\n",
            "refused",
        ),
        NastyMail(
            "from-quoted-local-part",
            _mail(irt, b"ack\r\n", sender=b'"alice@example.org"@evil.example'),
            "refused",
        ),
        NastyMail(
            "eight-bit-headers",
            b"From: \xc3\x84lice \xff\xfe <alice@example.org>\r\n"
            + reply_to
            + b"\r\nSubject: \x80\x81\x82 \xe2\x9a\xa0\r\nX-Junk: \xff\r\n\r\nack 8bit\r\n",
            "ack",
        ),
        NastyMail(
            "eight-bit-sender-address",
            _mail(irt, b"ack\r\n", sender=b"\xff\xfealice@example.org"),
            "refused",
        ),
        NastyMail(
            "nul-bytes",
            _mail([*irt, b"X-Junk: a\x00b"], b"unack\x00 with a NUL\r\n\x00\r\n"),
            "unack",
        ),
        NastyMail(
            "encoded-words",
            b"From: =?iso-8859-1?q?J=F6rg_?= <alice@example.org>\r\n"
            + reply_to
            + b"\r\nSubject: =?utf-8?b?UmU6IOKaoCB3ZWIgRVJST1I=?= =?x-unknown?q?=FF?=\r\n"
            b"\r\nack\r\n",
            "ack",
        ),
        NastyMail("nested-500-levels", _nested(irt, 500), "refused"),
        NastyMail("nested-12-levels", _nested(irt, 12), "unack"),
        NastyMail(
            "nested-500-levels-folded-headers",
            _nested(irt, 500).replace(b"Content-Type: multipart", b"Content-Type:\r\n multipart"),
            "refused",
        ),
        NastyMail(
            "nested-300-forwarded-messages",
            _mail(irt, b"", sender=SENDER)[:-4]
            + b"\r\n"
            + b"Content-Type: message/rfc822\r\n\r\n" * 300
            + b"Subject: x\r\n\r\nunack\r\n",
            "refused",
        ),
        NastyMail("empty-body", _mail(irt, b""), "ack"),
        NastyMail(
            "header-without-colon",
            _mail([*irt, b"this header has no colon at all"], b"unack\r\n"),
            None,
        ),
        NastyMail(
            "content-type-garbage",
            _mail([*irt, b"Content-Type: ;;;/// charset=="], b"unack\r\n"),
            None,
        ),
        NastyMail(
            "line-too-long",
            _mail(irt, b"ack " + b"x" * 5000 + b"\r\n"),
            "refused",
        ),
        NastyMail(
            "bare-newlines",
            b"From: alice@example.org\n" + reply_to + b"\n\nunack\n",
            None,
        ),
        NastyMail(
            "utf16-body-without-charset",
            _mail([*irt, b"Content-Type: text/plain"], "\ufeffunack".encode("utf-16-le")),
            None,
        ),
    ]
