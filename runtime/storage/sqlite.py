"""The embedded store: one SQLite file in the lab's run folder, WAL mode, batched executemany."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from .base import ALERT_FIELDS, Batch, BatchRejected, StoreUnavailable, TelemetryMsg
from .queries import Dialect, SqlStore
from .schema import SCHEMA_VERSION_TABLE, SQLITE_MIGRATIONS

log = logging.getLogger(__name__)

UPSERT_LATEST = (
    "INSERT INTO latest (ts, device, metric, value, text_value) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (device, metric) DO UPDATE SET ts = excluded.ts, value = excluded.value,"
    " text_value = excluded.text_value WHERE excluded.ts >= latest.ts")
UPSERT_ALERT = (
    f"INSERT INTO alerts ({', '.join(ALERT_FIELDS)}) VALUES ({', '.join('?' * len(ALERT_FIELDS))})"
    " ON CONFLICT (id) DO UPDATE SET severity = excluded.severity, message = excluded.message,"
    " resolved_at = excluded.resolved_at,"
    " acked_at = coalesce(alerts.acked_at, excluded.acked_at),"
    " acked_by = coalesce(alerts.acked_by, excluded.acked_by)")


Row = tuple[float, str, str, float | None, str | None]  # ts, device, metric, value, text


def telemetry_rows(msgs: list[TelemetryMsg]) -> tuple[list[Row], list[Row]]:
    """Narrow rows, one per metric (bools as 0/1, strings as text), and the newest per series.

    Measured here: one executemany per batch costs the same as handing SQLite the batch as one
    JSON parameter to expand with json_each, so the plain way stays.
    """
    rows: list[Row] = []
    add = rows.append
    newest: dict[tuple[str, str], Row] = {}
    for ts, device, values in msgs:
        for metric, v in values.items():
            t = type(v)
            if t is float:
                row: Row = (ts, device, metric, v, None)
            elif t is str:
                row = (ts, device, metric, None, v)
            elif t is bool:
                row = (ts, device, metric, 1.0 if v else 0.0, None)
            else:
                row = (ts, device, metric, float(v), None)
            add(row)
            key = (device, metric)
            old = newest.get(key)
            if old is None or old[0] <= ts:
                newest[key] = row
    return rows, list(newest.values())


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.row_factory = sqlite3.Row
    return conn


class SqliteStore(SqlStore):
    kind = "sqlite"
    # Epoch seconds stored as REAL; rowid keeps transitions of one ts in insertion order.
    dialect = Dialect(
        param="?", ts="ts", bucket_ts="(CAST(ts / ? AS INTEGER) - (ts < 0)) * ?", at="?",
        first_ts=-1e18, last_ts=1e18, true="1", alert_columns=", ".join(ALERT_FIELDS),
        same_ts_order=", rowid DESC")

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None

    def connect(self) -> None:
        self.close()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(self.path)
            self._migrate(conn)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.path}: {exc}") from exc
        self._conn = conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute(SCHEMA_VERSION_TABLE)
        current = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
        for version, statements in SQLITE_MIGRATIONS:
            if version <= current:
                continue
            conn.execute("BEGIN IMMEDIATE")
            for sql in statements:
                conn.execute(sql)
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                         (version, time.time()))
            conn.execute("COMMIT")
            log.info("%s: schema migrated to version %d", self.path, version)

    def write(self, batch: Batch) -> None:
        conn = self._conn
        if conn is None:
            raise StoreUnavailable("not connected")
        try:
            conn.execute("BEGIN")
            if batch.telemetry:
                rows, latest = telemetry_rows(batch.telemetry)
                conn.executemany("INSERT INTO telemetry VALUES (?, ?, ?, ?, ?)", rows)
                conn.executemany(UPSERT_LATEST, latest)
            if batch.transitions:
                conn.executemany("INSERT INTO transitions VALUES (?, ?, ?, ?, ?)",
                                 batch.transitions)
            if batch.alerts:
                conn.executemany(UPSERT_ALERT,
                                 [tuple(a.get(f) for f in ALERT_FIELDS) for a in batch.alerts])
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError):
                raise BatchRejected(f"{self.path}: {exc}") from exc
            raise StoreUnavailable(f"{self.path}: {exc}") from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- queries ------------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            self._local.conn = conn
            self._readers.append(conn)
        return conn

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self._reader().execute(sql, params).fetchall()]

    def ack_alert(self, alert_id: str, by: str, at: float) -> bool:
        cur = self._reader().execute(
            "UPDATE alerts SET acked_at = ?, acked_by = ? WHERE id = ?", (at, by, alert_id))
        return cur.rowcount > 0

    def count_telemetry(self, device: str | None = None) -> int:
        if device is None:
            return int(self._reader().execute("SELECT count(*) FROM telemetry").fetchone()[0])
        return int(self._reader().execute(
            "SELECT count(*) FROM telemetry WHERE device = ?", (device,)).fetchone()[0])
