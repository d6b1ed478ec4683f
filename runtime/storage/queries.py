"""The read side of both SQL stores: per-thread readers, and each query spelled per dialect."""

from __future__ import annotations

import abc
import threading
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from .base import Store


@dataclass(frozen=True)
class Dialect:
    """What a database spells its own way in the read queries.

    Attributes:
        param: the driver's placeholder (`?` for sqlite3, `%s` for psycopg).
        ts: the ts column as epoch seconds, in a select list (named ts).
        bucket_ts: the start of ts's bucket in epoch seconds; takes the bucket size twice.
        at: a placeholder for an epoch-seconds bound, as the ts column's type.
        first_ts: the start of time when a query gives none, in epoch seconds.
        last_ts: the end of time when a query gives none, in epoch seconds.
        true: a condition that always holds.
        alert_columns: the alert fields, times as epoch seconds, in a select list.
        same_ts_order: how rows of one ts go newest first (after ORDER BY ts DESC), or "".
    """

    param: str
    ts: str
    bucket_ts: str
    at: str
    first_ts: float
    last_ts: float
    true: str
    alert_columns: str
    same_ts_order: str = ""


class _Closable(Protocol):
    def close(self) -> None: ...


class SqlStore(Store):
    """A store whose queries are SQL: it gives its Dialect and runs them with `_all`, each
    thread on a reader connection of its own (`_local.conn`, listed in `_readers`)."""

    dialect: ClassVar[Dialect]

    def __init__(self) -> None:
        self._local = threading.local()
        self._readers: list[_Closable] = []

    def close_readers(self) -> None:
        readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._local = threading.local()

    @abc.abstractmethod
    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Run a query on this thread's reader connection; every row as a dict."""

    def _range(self, start: float | None, end: float | None) -> tuple[float, float]:
        d = self.dialect
        return (start if start is not None else d.first_ts, end if end is not None else d.last_ts)

    def latest(self, device: str | None = None) -> list[dict[str, Any]]:
        d = self.dialect
        sql = f"SELECT device, metric, {d.ts}, value, text_value AS text FROM latest"
        if device is None:
            return self._all(sql + " ORDER BY device, metric")
        return self._all(sql + f" WHERE device = {d.param} ORDER BY metric", (device,))

    def history(self, device: str, metric: str, start: float | None = None,
                end: float | None = None, bucket_s: float | None = None,
                limit: int = 10_000) -> list[dict[str, Any]]:
        d, p = self.dialect, self.dialect.param
        where = f"device = {p} AND metric = {p} AND ts >= {d.at} AND ts < {d.at}"
        params = (device, metric, *self._range(start, end))
        if not bucket_s:
            return self._all(f"SELECT {d.ts}, value, text_value AS text FROM telemetry"
                             f" WHERE {where} ORDER BY ts LIMIT {p}", (*params, limit))
        return self._all(
            f"SELECT {d.bucket_ts} AS ts, avg(value) AS value,"
            " min(value) AS min, max(value) AS max, count(*) AS count"
            f" FROM telemetry WHERE {where} GROUP BY 1 ORDER BY 1 LIMIT {p}",
            (bucket_s, bucket_s, *params, limit))

    def transitions(self, device: str | None = None, start: float | None = None,
                    end: float | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        d = self.dialect
        sql = (f"SELECT {d.ts}, device, from_state, to_state, reason FROM transitions"
               f" WHERE ts >= {d.at} AND ts < {d.at}")
        params: tuple[Any, ...] = self._range(start, end)
        if device is not None:
            sql += f" AND device = {d.param}"
            params += (device,)
        return self._all(sql + f" ORDER BY ts DESC{d.same_ts_order} LIMIT {d.param}",
                         (*params, limit))

    def alerts(self, status: str = "all", device: str | None = None,
               limit: int = 1000) -> list[dict[str, Any]]:
        d = self.dialect
        clauses = {"all": d.true, "open": "resolved_at IS NULL",
                   "resolved": "resolved_at IS NOT NULL"}
        if status not in clauses:
            raise ValueError(f"status must be one of {', '.join(clauses)}")
        sql = f"SELECT {d.alert_columns} FROM alerts WHERE {clauses[status]}"
        params: tuple[Any, ...] = ()
        if device is not None:
            sql += f" AND device = {d.param}"
            params = (device,)
        return self._all(sql + f" ORDER BY raised_at DESC LIMIT {d.param}", (*params, limit))
