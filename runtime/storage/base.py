"""What every store offers: a batched write in one transaction and the queries the API needs."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

TelemetryMsg = tuple[float, str, dict[str, Any]]  # (ts, device, {metric: value})
TransitionRow = tuple[float, str, str, str, str]  # (ts, device, from, to, reason)
ALERT_FIELDS = ("id", "device", "metric", "kind", "severity", "message", "raised_at",
                "resolved_at", "acked_at", "acked_by")


class StoreUnavailable(Exception):
    """The database cannot be reached or failed to write; the batch is kept for later."""


class BatchRejected(Exception):
    """The database refused the batch's data itself: retrying it would never succeed."""


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


class Store(abc.ABC):
    """A telemetry, state-history and alert database. Writes come from one writer thread;
    queries may come from any thread (each gets its own connection)."""

    kind = "store"

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the writer connection and create or migrate the schema (StoreUnavailable)."""

    @abc.abstractmethod
    def write(self, batch: Batch) -> None:
        """Write a batch in one transaction; nothing is written when it raises.

        Raises:
            StoreUnavailable: try again later (connection lost, database locked or down).
            BatchRejected: the data itself was refused (kept aside by the writer).
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Close the writer connection."""

    @abc.abstractmethod
    def close_readers(self) -> None:
        """Close the query connections of every thread (call when nothing queries any more)."""

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
