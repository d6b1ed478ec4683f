"""The audit log: every login, command, alert ack and maintenance change, stored and queryable.

SQLite in run/api/audit.sqlite3 by default; a table api_audit in PostgreSQL when the API has a
database URL. The API owns this table; the storage schema is the engine's.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

log = logging.getLogger(__name__)

AUDIT_FILE = Path("run/api/audit.sqlite3")
FIELDS = ("ts", "user_name", "role", "action", "target", "outcome", "client", "detail")
SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS api_audit (id INTEGER PRIMARY KEY, ts REAL NOT NULL,"
    " user_name TEXT NOT NULL, role TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,"
    " outcome TEXT NOT NULL, client TEXT NOT NULL, detail TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS api_audit_ts ON api_audit (ts)",
)
PG_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS api_audit (id bigserial PRIMARY KEY, ts double precision NOT NULL,"
    " user_name text NOT NULL, role text NOT NULL, action text NOT NULL, target text NOT NULL,"
    " outcome text NOT NULL, client text NOT NULL, detail text NOT NULL)",
    "CREATE INDEX IF NOT EXISTS api_audit_ts ON api_audit (ts)",
)
ACTIONS = ("login", "command", "ack", "maintenance")


@dataclass(frozen=True)
class AuditQuery:
    action: str | None = None
    user: str | None = None
    target: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 100


class AuditLog:
    """Append and query audit entries; safe from any thread.

    Args:
        lab_dir: where the SQLite file goes when no URL is given.
        url: a PostgreSQL URL.
    """

    def __init__(self, lab_dir: Path, url: str | None = None) -> None:
        self.url = url
        self.path = lab_dir / AUDIT_FILE
        self.kind = "postgres" if url else "sqlite"
        self._lock = threading.Lock()
        self._sqlite: sqlite3.Connection | None = None
        self._pg: psycopg.Connection[dict[str, Any]] | None = None
        self.failures = 0

    # -- connections --------------------------------------------------------------------------

    def _sqlite_conn(self) -> sqlite3.Connection:
        if self._sqlite is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=10.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.row_factory = sqlite3.Row
            for sql in SQLITE_SCHEMA:
                conn.execute(sql)
            self._sqlite = conn
        return self._sqlite

    def _pg_conn(self) -> psycopg.Connection[dict[str, Any]]:
        if self._pg is None or self._pg.closed:
            assert self.url is not None
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=3,
                                   row_factory=dict_row)
            for sql in PG_SCHEMA:
                conn.execute(sql.encode())
            self._pg = conn
        return self._pg

    def _execute(self, sqlite_sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self._lock:
            if self.url is None:
                return [dict(r) for r in self._sqlite_conn().execute(sqlite_sql, params)]
            try:
                cur = self._pg_conn().execute(sqlite_sql.replace("?", "%s").encode(), params)
            except psycopg.OperationalError:
                self._pg = None  # reconnect once
                cur = self._pg_conn().execute(sqlite_sql.replace("?", "%s").encode(), params)
            return list(cur.fetchall()) if cur.description else []

    def open(self) -> None:
        """Create the table now, so a broken database shows at startup."""
        self._execute("SELECT 1 AS ok", ())

    def close(self) -> None:
        with self._lock:
            if self._sqlite is not None:
                self._sqlite.close()
                self._sqlite = None
            if self._pg is not None:
                self._pg.close()
                self._pg = None

    # -- entries ------------------------------------------------------------------------------

    def record(self, user: str, role: str, action: str, target: str, outcome: str,
               client: str, detail: dict[str, Any] | None = None) -> None:
        """Append one entry. A database failure is logged and counted, never raised: the
        action it records has already happened."""
        row = (time.time(), user, role, action, target, outcome, client,
               json.dumps(detail or {}, sort_keys=True, default=str))
        try:
            self._execute(f"INSERT INTO api_audit ({', '.join(FIELDS)}) VALUES"
                          f" ({', '.join('?' * len(FIELDS))})", row)
        except (sqlite3.Error, psycopg.Error, OSError) as exc:
            self.failures += 1
            log.error("audit: cannot record %s %s by %s: %s", action, target, user, exc)
        log.info("audit: %s %s %s by %s (%s) from %s", action, target, outcome, user, role,
                 client)

    def query(self, q: AuditQuery) -> list[dict[str, Any]]:
        """Entries, newest first."""
        clauses: list[str] = ["1 = 1"]
        params: list[Any] = []
        for column, value in (("action", q.action), ("user_name", q.user),
                              ("target", q.target)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if q.since is not None:
            clauses.append("ts >= ?")
            params.append(q.since)
        if q.until is not None:
            clauses.append("ts < ?")
            params.append(q.until)
        rows = self._execute(
            f"SELECT id, {', '.join(FIELDS)} FROM api_audit WHERE {' AND '.join(clauses)}"
            " ORDER BY ts DESC, id DESC LIMIT ?", (*params, q.limit))
        for row in rows:
            row["user"] = row.pop("user_name")
            try:
                row["detail"] = json.loads(row["detail"])
            except ValueError:
                row["detail"] = {"raw": row["detail"]}
        return rows
