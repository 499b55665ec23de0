"""Store fixtures: every store test runs on SQLite and on a real PostgreSQL server.

The PostgreSQL server starts once per session (only when a PostgreSQL test runs)
and each test gets a database of its own, so tests never see each other's rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pymon.store.sql import SqlStore
from tests.conftest import postgres_or_skip
from tests.support.postgres import PostgresServer

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session; skipped (or failed) when not installed."""
    with postgres_or_skip() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The session server's maintenance database URL (``postgresql://postgres@...``)."""
    return postgres_server.url()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test."""
    param: str = request.param
    return param


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL to an empty database on ``backend``: a new file, or a new PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/data/pymon.db"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    try:
        yield url
    finally:
        server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SqlStore]:
    """An open store on an empty database, with a 1000-result ring."""
    sql_store = SqlStore(store_url)
    await sql_store.open()
    try:
        yield sql_store
    finally:
        await sql_store.close()
