"""Storage of telemetry, state transitions and alerts: SQLite embedded, PostgreSQL for real use."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .base import Batch, Store, StoreUnavailable
from .dsn import DATABASE_URL_ENV, DatabaseSettingError, database_url
from .postgres import PostgresStore
from .sqlite import SqliteStore
from .writer import StorageWriter

SQLITE_FILE = "dtnlab.sqlite3"


def open_store(run_dir: Path, url: str | None = None,
               environ: Mapping[str, str] | None = None) -> Store:
    """PostgreSQL when `url` (or $DTN_DATABASE_URL) is set, else SQLite in the run folder.

    The store is not connected yet: the writer connects it; queries connect on their own.
    The password comes from $DTN_DATABASE_PASSWORD_FILE when the URL has none (dsn.py).

    Raises:
        DatabaseSettingError: the password file cannot be read.
    """
    url = database_url(url, environ)
    if url:
        return PostgresStore(url)
    return SqliteStore(Path(run_dir) / SQLITE_FILE)


__all__ = ["DATABASE_URL_ENV", "Batch", "DatabaseSettingError", "PostgresStore", "SqliteStore",
           "StorageWriter", "Store", "StoreUnavailable", "database_url", "open_store"]
