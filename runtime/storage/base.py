"""What every store offers: a batched write in one transaction and the queries the API needs."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

TelemetryMsg = tuple[float, str, dict[str, Any]]  # (ts, device, {metric: value})
TransitionRow = tuple[float, str, str, str, str]  # (ts, device, from, to, reason)
TelemetryRow = tuple[float, str, str, float | None, str | None]  # ts, device, metric, value, text
ALERT_FIELDS = ("id", "device", "metric", "kind", "severity", "message", "raised_at",
                "resolved_at", "acked_at", "acked_by")


class StoreUnavailable(Exception):
    """The database cannot be reached or refused the write; the batch is kept for later."""


@dataclass
class Batch:
    """Rows to write together: telemetry messages, state transitions, alert upserts (by id)."""

    telemetry: list[TelemetryMsg] = field(default_factory=list)
    transitions: list[TransitionRow] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.telemetry) + len(self.transitions) + len(self.alerts)

    def extend(self, other: Batch) -> None:
        self.telemetry += other.telemetry
        self.transitions += other.transitions
        self.alerts += other.alerts


def telemetry_rows(
    msgs: list[TelemetryMsg],
) -> tuple[list[TelemetryRow], dict[tuple[str, str], TelemetryRow]]:
    """Narrow rows, one per metric (bools as 0/1, strings as text), and the newest per series."""
    rows: list[TelemetryRow] = []
    add = rows.append
    latest: dict[tuple[str, str], TelemetryRow] = {}
    for ts, device, values in msgs:
        for metric, v in values.items():
            t = type(v)
            if t is float:
                row: TelemetryRow = (ts, device, metric, v, None)
            elif t is str:
                row = (ts, device, metric, None, v)
            elif t is bool:
                row = (ts, device, metric, 1.0 if v else 0.0, None)
            else:
                row = (ts, device, metric, float(v), None)
            add(row)
            key = (device, metric)
            old = latest.get(key)
            if old is None or old[0] <= ts:
                latest[key] = row
    return rows, latest


class Store(abc.ABC):
    """A telemetry, state-history and alert database. Writes come from one writer thread;
    queries may come from any thread (each gets its own connection)."""

    kind = "store"

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the writer connection and create or migrate the schema (StoreUnavailable)."""

    @abc.abstractmethod
    def write(self, batch: Batch) -> None:
        """Write a batch in one transaction (StoreUnavailable: nothing was written)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def latest(self, device: str | None = None) -> list[dict[str, Any]]:
        """Newest value of every metric (of one device): device, metric, ts, value, text."""

    @abc.abstractmethod
    def history(self, device: str, metric: str, start: float | None = None,
                end: float | None = None, bucket_s: float | None = None,
                limit: int = 10_000) -> list[dict[str, Any]]:
        """Values between start and end (epoch s), oldest first: raw rows {ts, value, text},
        or with bucket_s one row per bucket {ts (bucket start), value (mean), min, max, count}."""

    @abc.abstractmethod
    def transitions(self, device: str | None = None, start: float | None = None,
                    end: float | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """State transitions, newest first: ts, device, from_state, to_state, reason."""

    @abc.abstractmethod
    def alerts(self, status: str = "all", device: str | None = None,
               limit: int = 1000) -> list[dict[str, Any]]:
        """Alerts, newest first; status is all, open (not resolved) or resolved."""

    @abc.abstractmethod
    def ack_alert(self, alert_id: str, by: str, at: float) -> bool:
        """Acknowledge an alert; False when there is no such alert."""

    @abc.abstractmethod
    def count_telemetry(self, device: str | None = None) -> int: ...
