"""Per-incident secrets for acknowledging by e-mail reply, and where a reply carries them.

A token is derived from the incident id with HMAC-SHA256 under a secret key that
pymon generates once and keeps in the store, so it survives restarts, is shared by
instances on one database, and cannot be guessed from the incident id. It appears
in three places of every e-mail notice, and a reply that keeps any of them proves
it answers that incident: the ``Reply-To`` address (``ack+<token>@domain``), the
``Message-ID`` (``<pymon.<token>.<hash>@domain>``, which replies quote in
``In-Reply-To`` and ``References``) and, for scripts, an ``X-Pymon-Token`` header
next to ``X-Pymon-Incident``.
"""

from __future__ import annotations

import hashlib
import hmac
import re

__all__ = ["TOKEN_LENGTH", "AckTokens", "message_id", "thread_root_key", "tokens_in"]

#: Hex digits of a token (80 bits): short enough for an address, far too many to guess.
TOKEN_LENGTH = 20

_HEX = f"([0-9a-f]{{{TOKEN_LENGTH}}})"
_MESSAGE_ID = re.compile(rf"<pymon\.{_HEX}\.[0-9a-f]+@[^>\s]+>", re.I)
_PLUS = re.compile(rf"\+{_HEX}@", re.I)


class AckTokens:
    """Makes and checks incident tokens under one secret key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the token key must be at least 16 bytes")
        self._key = key

    def token(self, incident: str) -> str:
        """The token of ``incident`` (lowercase hex: addresses are case-insensitive)."""
        digest = hmac.new(self._key, incident.encode(), hashlib.sha256).hexdigest()
        return digest[:TOKEN_LENGTH]

    def valid(self, incident: str, token: str) -> bool:
        """Whether ``token`` belongs to ``incident`` (constant-time comparison)."""
        if re.fullmatch(r"[0-9a-fA-F]+", token, re.ASCII) is None:
            return False  # compare_digest refuses non-ASCII text; it is no token anyway
        return hmac.compare_digest(self.token(incident), token.lower())

    def address(self, base: str, incident: str) -> str:
        """``base`` (``ack@example.org``) with the incident's token: ``ack+<token>@example.org``."""
        local, _, domain = base.rpartition("@")
        local = local.split("+", 1)[0]
        return f"{local}+{self.token(incident)}@{domain}"


def message_id(key: str, channel: str, token: str | None, domain: str) -> str:
    """The ``Message-ID`` of notice ``key`` on ``channel``: stable, so a notice sent
    again after a crash carries the same id and mail clients show it once."""
    digest = hashlib.sha256(f"{key}\0{channel}".encode()).hexdigest()[:16]
    return f"<pymon.{token or '0' * TOKEN_LENGTH}.{digest}@{domain}>"


def thread_root_key(incident: str) -> str:
    """The notice key whose message starts an incident's thread (its first problem notice)."""
    return f"{incident}:problem:1"


def tokens_in(text: str) -> list[str]:
    """Every token found in ``text``: message ids (``In-Reply-To``, ``References``) and
    plus-addresses (``ack+<token>@...``), lowercase, in order, without repeats."""
    found = [m.lower() for m in _MESSAGE_ID.findall(text)] + [
        m.lower() for m in _PLUS.findall(text)
    ]
    return [t for t in dict.fromkeys(found) if t != "0" * TOKEN_LENGTH]
