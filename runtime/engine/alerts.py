"""Alerts: raised once per (device, metric, kind), escalated in place, resolved when clear."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

THRESHOLD = "threshold"
ANOMALY = "anomaly"
INVALID_DATA = "invalid_data"
STUCK = "stuck"  # a float reading repeated exactly, see anomaly.FlatLine
OFFLINE = "offline"
SEVERITY_RANK = {"info": 0, "warning": 1, "major": 2, "critical": 3}

_ids = itertools.count(1)


@dataclass
class Alert:
    id: str
    device: str
    metric: str
    kind: str
    severity: str
    message: str
    raised_at: float
    resolved_at: float | None = None
    acked_at: float | None = None
    acked_by: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


AlertSink = Callable[[Alert, str], None]  # (alert, event: raised | escalated | resolved)


class AlertBook:
    """Open alerts of the whole lab; every change goes to `sink` (publish and store)."""

    def __init__(self, sink: AlertSink) -> None:
        self.open: dict[tuple[str, str, str], Alert] = {}
        self.open_by_device: dict[str, int] = {}
        self._sink = sink
        self._prefix = f"{int(time.time() * 1000):x}"

    def raise_(self, device: str, metric: str, kind: str, severity: str, message: str,
               now: float) -> Alert:
        key = (device, metric, kind)
        alert = self.open.get(key)
        if alert is not None:
            if SEVERITY_RANK[severity] > SEVERITY_RANK[alert.severity]:
                alert.severity, alert.message = severity, message
                self._sink(alert, "escalated")
            return alert
        alert = Alert(f"{self._prefix}-{next(_ids)}", device, metric, kind, severity, message,
                      now)
        self.open[key] = alert
        self.open_by_device[device] = self.open_by_device.get(device, 0) + 1
        self._sink(alert, "raised")
        return alert

    def resolve(self, device: str, metric: str, kind: str, message: str, now: float) -> None:
        alert = self.open.pop((device, metric, kind), None)
        if alert is None:
            return
        self.open_by_device[device] -= 1
        alert.resolved_at = now
        alert.message = f"{alert.message}; resolved: {message}"
        self._sink(alert, "resolved")

    def count(self, device: str) -> int:
        return self.open_by_device.get(device, 0)
