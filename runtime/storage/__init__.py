"""Storage of telemetry, state transitions and alerts: SQLite embedded, PostgreSQL for real use."""

from __future__ import annotations

import os
from pathlib import Path

from .base import Batch, Store, StoreUnavailable
from .postgres import PostgresStore
from .sqlite import SqliteStore
from .writer import StorageWriter

DATABASE_URL_ENV = "DTN_DATABASE_URL"
SQLITE_FILE = "dtnlab.sqlite3"


def open_store(run_dir: Path, url: str | None = None) -> Store:
    """PostgreSQL when `url` (or $DTN_DATABASE_URL) is set, else SQLite in the run folder.

    The store is not connected yet: the writer connects it; queries connect on their own.
    """
    url = url if url is not None else os.environ.get(DATABASE_URL_ENV)
    if url:
        return PostgresStore(url)
    return SqliteStore(Path(run_dir) / SQLITE_FILE)


__all__ = ["Batch", "PostgresStore", "SqliteStore", "StorageWriter", "Store", "StoreUnavailable",
           "open_store"]
