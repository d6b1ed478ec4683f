"""Fixtures for storage tests: SQLite in a temporary folder, PostgreSQL databases and clusters."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from dtnlab.runtime.storage import PostgresStore, SqliteStore, Store
from tests.runtime.storage.pgcluster import Cluster, TestDatabase

S = TypeVar("S", bound=Store)


@contextmanager
def connected(store: S) -> Iterator[S]:
    store.connect()
    try:
        yield store
    finally:
        store.close()
        store.close_readers()


@pytest.fixture(params=[pytest.param("sqlite"),
                        pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        with connected(SqliteStore(tmp_path / "run" / "dtnlab.sqlite3")) as sqlite:
            yield sqlite
        return
    with TestDatabase() as db, connected(PostgresStore(db.url)) as postgres:
        yield postgres


@pytest.fixture
def pg_store() -> Iterator[PostgresStore]:
    with TestDatabase() as db, connected(PostgresStore(db.url)) as postgres:
        yield postgres


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    c.start()
    yield c
    c.destroy()
