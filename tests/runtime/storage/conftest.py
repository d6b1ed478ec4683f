"""Fixtures for storage tests: SQLite in a temporary folder, PostgreSQL databases and clusters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pgcluster import Cluster, TestDatabase

from dtnlab.runtime.storage import PostgresStore, SqliteStore, Store


@pytest.fixture(params=[pytest.param("sqlite"),
                        pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s: Store = SqliteStore(tmp_path / "run" / "dtnlab.sqlite3")
        s.connect()
        yield s
        s.close()
        s.close_readers()
        return
    with TestDatabase() as db:
        s = PostgresStore(db.url)
        s.connect()
        yield s
        s.close()
        s.close_readers()


@pytest.fixture
def pg_store() -> Iterator[PostgresStore]:
    with TestDatabase() as db:
        s = PostgresStore(db.url)
        s.connect()
        yield s
        s.close()
        s.close_readers()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    c.start()
    yield c
    c.destroy()
