"""The embedded store: one SQLite file in the lab's run folder, WAL mode, batched executemany."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from .base import ALERT_FIELDS, Batch, BatchRejected, Store, StoreUnavailable, TelemetryMsg
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


class SqliteStore(Store):
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []

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

    def close_readers(self) -> None:
        readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._local = threading.local()

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

    def latest(self, device: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT device, metric, ts, value, text_value AS text FROM latest"
        if device is None:
            return self._all(sql + " ORDER BY device, metric")
        return self._all(sql + " WHERE device = ? ORDER BY metric", (device,))

    def history(self, device: str, metric: str, start: float | None = None,
                end: float | None = None, bucket_s: float | None = None,
                limit: int = 10_000) -> list[dict[str, Any]]:
        where = "device = ? AND metric = ? AND ts >= ? AND ts < ?"
        params: tuple[Any, ...] = (device, metric, start if start is not None else -1e18,
                                   end if end is not None else 1e18)
        if not bucket_s:
            return self._all(f"SELECT ts, value, text_value AS text FROM telemetry WHERE {where}"
                             " ORDER BY ts LIMIT ?", (*params, limit))
        return self._all(
            "SELECT (CAST(ts / ? AS INTEGER) - (ts < 0)) * ? AS ts, avg(value) AS value,"
            " min(value) AS min, max(value) AS max, count(*) AS count"
            f" FROM telemetry WHERE {where} GROUP BY 1 ORDER BY 1 LIMIT ?",
            (bucket_s, bucket_s, *params, limit))

    def transitions(self, device: str | None = None, start: float | None = None,
                    end: float | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        sql = "SELECT ts, device, from_state, to_state, reason FROM transitions WHERE ts >= ?" \
              " AND ts < ?"
        params: list[Any] = [start if start is not None else -1e18,
                             end if end is not None else 1e18]
        if device is not None:
            sql += " AND device = ?"
            params.append(device)
        return self._all(sql + " ORDER BY ts DESC, rowid DESC LIMIT ?", (*params, limit))

    def alerts(self, status: str = "all", device: str | None = None,
               limit: int = 1000) -> list[dict[str, Any]]:
        clauses = {"all": "1", "open": "resolved_at IS NULL",
                   "resolved": "resolved_at IS NOT NULL"}
        if status not in clauses:
            raise ValueError(f"status must be one of {', '.join(clauses)}")
        sql = f"SELECT {', '.join(ALERT_FIELDS)} FROM alerts WHERE {clauses[status]}"
        params: tuple[Any, ...] = ()
        if device is not None:
            sql += " AND device = ?"
            params = (device,)
        return self._all(sql + " ORDER BY raised_at DESC LIMIT ?", (*params, limit))

    def ack_alert(self, alert_id: str, by: str, at: float) -> bool:
        cur = self._reader().execute(
            "UPDATE alerts SET acked_at = ?, acked_by = ? WHERE id = ?", (at, by, alert_id))
        return cur.rowcount > 0

    def count_telemetry(self, device: str | None = None) -> int:
        if device is None:
            return int(self._reader().execute("SELECT count(*) FROM telemetry").fetchone()[0])
        return int(self._reader().execute(
            "SELECT count(*) FROM telemetry WHERE device = ?", (device,)).fetchone()[0])
