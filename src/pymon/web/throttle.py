"""Brute-force throttling of failed credentials: per client address and per user.

Each key (``addr:<address>``, ``user:<name>``) may fail a few times freely; every
failure after those blocks the key for twice as long as the one before (1 s, 2 s,
4 s ... up to 15 minutes). An attempt on a blocked key is refused with 429 and
``Retry-After`` before any secret is checked, so a guesser also costs pymon no
argon2 work. A key with no failure for a while is forgotten.

The real user is not locked out by someone else's guessing: the per-user key is not
applied to an address that has signed in as that user before (remembered per user),
and a guesser's own address runs out of attempts first. A right secret clears its
address's failures, but not the user's: holding one account does not buy guesses
at another. All times come from the
caller (the engine's clock), so tests are exact.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["Throttle", "address_key", "retry_header", "user_key"]

FREE_PER_ADDRESS = 5
FREE_PER_USER = 10
FIRST_BLOCK = 1.0
LONGEST_BLOCK = 900.0
FORGET_AFTER = 3600.0
_MAX_KEYS = 100_000
_KNOWN_PER_USER = 32


@dataclass(slots=True)
class _Record:
    failures: int
    last: float
    blocked_until: float


def address_key(address: str | None) -> str:
    """The key of a client address; an IPv6 address counts as its /64 (one host)."""
    if address is None:
        return "addr:?"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"addr:{address}"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return f"addr:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"addr:{ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else ip}"


def user_key(name: str) -> str:
    """The key of a user name (names longer than pymon allows share one key)."""
    return f"user:{name[:201]}"


class Throttle:
    """Failed attempts per key and the blocks they earned (bounded: the oldest keys go)."""

    def __init__(self) -> None:
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._known: OrderedDict[str, OrderedDict[str, None]] = OrderedDict()

    def keys(self, address: str | None, user: str | None) -> list[str]:
        """The keys an attempt from ``address`` (as ``user``, if named) counts against."""
        addr = address_key(address)
        if user is None or addr in self._known.get(user, ()):
            return [addr]
        return [addr, user_key(user)]

    def blocked_for(self, keys: list[str], now: float) -> float:
        """Seconds until an attempt on ``keys`` may go on (0: now)."""
        waits = [r.blocked_until - now for k in keys if (r := self._records.get(k)) is not None]
        return max([0.0, *waits])

    def attempt(self, keys: list[str], now: float) -> float:
        """Take an attempt on ``keys``: 0 when it may go on, else the seconds its block
        has left (refuse it, unchecked).

        The attempt counts as a failure at once (and :meth:`succeeded` takes it back),
        so attempts sent in parallel cannot all slip in before the first one fails.
        """
        wait = self.blocked_for(keys, now)
        if wait > 0:
            return wait
        for key in keys:
            record = self._records.pop(key, None)
            if record is None or now - record.last > FORGET_AFTER:
                record = _Record(0, now, now)
            record.failures += 1
            record.last = now
            beyond = record.failures - _free(key)
            if beyond > 0:
                block = min(LONGEST_BLOCK, FIRST_BLOCK * 2 ** min(beyond - 1, 30))
                record.blocked_until = now + block
            self._records[key] = record
        while len(self._records) > _MAX_KEYS:
            self._records.popitem(last=False)
        return 0.0

    def withdraw(self, keys: list[str]) -> None:
        """Take back the failure :meth:`attempt` counted (the secret was not checked)."""
        for key in keys:
            record = self._records.get(key)
            if record is not None:
                record.failures -= 1
                if record.failures <= _free(key):
                    record.blocked_until = record.last

    def succeeded(self, keys: list[str], address: str | None, user: str | None) -> None:
        """A right secret: the address starts afresh, the user's key takes back the
        failure :meth:`attempt` counted (its other failures stay: someone else may be
        guessing), and ``address`` is remembered as one that signed in as ``user``, so
        the user's key no longer applies there and guessing elsewhere cannot lock it out.
        """
        self.withdraw([k for k in keys if k.startswith("user:")])
        for key in keys:
            if not key.startswith("user:"):
                self._records.pop(key, None)
        if user is None:
            return
        known = self._known.pop(user, OrderedDict())
        known[address_key(address)] = None
        while len(known) > _KNOWN_PER_USER:
            known.popitem(last=False)
        self._known[user] = known
        while len(self._known) > _MAX_KEYS:
            self._known.popitem(last=False)


def _free(key: str) -> int:
    return FREE_PER_USER if key.startswith("user:") else FREE_PER_ADDRESS


def retry_header(seconds: float) -> str:
    """``Retry-After``'s value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))
