"""Helpers the check tests import: a fake resolver, connection handlers, fixture types."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from pymon.checks.base import CheckContext, Resolver
from pymon.model import CheckResult

__all__ = ["FakeResolver", "Handler", "MakeCtx", "RawServer", "RunCheck", "until_eof"]

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
RawServer = Callable[[Handler], contextlib.AbstractAsyncContextManager[int]]


class MakeCtx(Protocol):
    """The ``make_ctx`` fixture."""

    def __call__(self, timeout: float = ..., resolver: Resolver | None = ...) -> CheckContext: ...


class RunCheck(Protocol):
    """The ``check`` fixture: validate ``spec`` and run it through ``run_check``."""

    async def __call__(
        self,
        kind: str,
        spec: Mapping[str, object],
        within: float = ...,
        resolver: Resolver | None = ...,
    ) -> CheckResult: ...


class FakeResolver:
    """A resolver with a fixed table; a name not in it does not resolve."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = table or {}
        self.asked: list[str] = []

    async def resolve(self, host: str) -> list[str]:
        self.asked.append(host)
        try:
            return self.table[host]
        except KeyError:
            raise OSError(f"fake resolver: {host} is not known") from None


async def until_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept and say nothing; hold the connection until the client goes."""
    await reader.read()
