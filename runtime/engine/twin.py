"""One twin's live state: validation, quality, bands, anomalies and its health state machine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..labfiles import TwinConfig
from . import alerts as al
from .anomaly import AnomalyConfig, FlatLine, RobustDetector
from .health import (
    ERROR,
    INITIALIZING,
    LEVEL_NAMES,
    LEVEL_STATES,
    MAINTENANCE,
    OFFLINE,
    Band,
    Hysteresis,
    bands_for,
)
from .quality import Quality
from .validator import Validator, compile_validator

Transition = Callable[["Twin", str, str, str, float], None]  # twin, from, to, reason, now


class Twin:
    """Everything the engine keeps about one device; mutated only by the engine thread."""

    __slots__ = ("cfg", "id", "validate", "bands", "detectors", "flatlines", "quality", "state",
                 "since", "reason", "online", "had_data", "error", "maintenance", "invalid_streak",
                 "valid_streak", "last_seen", "last_ts", "seq", "values", "messages",
                 "invalid", "last_invalid", "n_metrics", "_book", "_on_transition", "_hyst")

    def __init__(self, cfg: TwinConfig, hyst: Hysteresis, anomaly: AnomalyConfig,
                 book: al.AlertBook, on_transition: Transition) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.validate: Validator = compile_validator(cfg.telemetry_schema, cfg.id)
        self.bands: list[Band] = bands_for(cfg.metrics, hyst)
        self.detectors: list[RobustDetector] = [
            RobustDetector(name, spec, anomaly) for name, spec in cfg.metrics.items()
            if spec.numeric]
        self.flatlines: list[FlatLine] = flatlines_for(cfg)
        self.quality = Quality(cfg.period_s, cfg.heartbeat_s)
        self.n_metrics = max(len(cfg.metrics), 1)
        self.state, self.since, self.reason = OFFLINE, 0.0, "not seen yet"
        self.online = self.had_data = self.error = False
        self.maintenance: str | None = None
        self.invalid_streak = self.valid_streak = 0
        self.last_seen = 0.0
        self.last_ts: float | None = None
        self.seq: int | None = None
        self.values: dict[str, Any] = {}
        self.messages = self.invalid = 0
        self.last_invalid: str | None = None
        self._book = book
        self._on_transition = on_transition
        self._hyst = hyst

    # -- inputs -------------------------------------------------------------------------------

    def on_telemetry(self, msg: dict[str, Any], now: float) -> None:
        """A message that passed validation."""
        self.messages += 1
        self.last_seen = now
        values = msg["values"]
        ts = msg["ts"]
        self.values, self.last_ts, self.seq = values, ts, msg.get("seq")
        self.quality.on_message(now, ts, True, 1.0)
        self.invalid_streak = 0
        changed = False
        for band in self.bands:
            if band.update(values[band.name]):
                changed = True
                self._band_alert(band, now)
        for det in self.detectors:
            if det.update(values[det.name]):
                self._anomaly_alert(det, now)
        for flat in self.flatlines:
            if flat.update(values[flat.name]):
                changed = True
                self._stuck_alert(flat, now)
        if self.error:
            self.valid_streak += 1
            if self.valid_streak >= self._hyst.valid_to_recover:
                self.error = False
                self._book.resolve(self.id, "", al.INVALID_DATA, "valid data again", now)
                changed = True
        if changed or not self.had_data or not self.online or self.state == OFFLINE:
            if not self.online:  # silent, not disconnected (a dropout): no birth will come
                self._book.resolve(self.id, "", al.OFFLINE, "data again", now)
            self.online = self.had_data = True
            self._evaluate(now, self._level_reason())

    def on_invalid(self, msg: Any, reason: str, now: float) -> None:
        self.messages += 1
        self.invalid += 1
        self.last_invalid = reason
        self.last_seen = now
        ts = msg.get("ts") if type(msg) is dict else None
        values = msg.get("values") if type(msg) is dict else None
        present = (sum(1 for m in self.cfg.metrics if m in values) / self.n_metrics
                   if type(values) is dict else 0.0)
        self.quality.on_message(now, ts if type(ts) in (int, float) else None, False, present)
        self.valid_streak = 0
        self.invalid_streak += 1
        if not self.online:
            self.online = True
            self._book.resolve(self.id, "", al.OFFLINE, "data again", now)
            self._evaluate(now, "data from a device thought offline")
        if not self.error and self.invalid_streak >= self._hyst.invalid_to_error:
            self.error = True
            text = f"{self.invalid_streak} invalid messages in a row ({reason})"
            self._raise("", al.INVALID_DATA, "major", text, now)
            self._evaluate(now, text)

    def on_status(self, online: bool, now: float) -> None:
        if online:
            self.last_seen = now
            self.online, self.had_data = True, False  # initializing until fresh valid data
            self._book.resolve(self.id, "", al.OFFLINE, "birth message", now)
            self._evaluate(now, "birth message")
        elif self.online:
            self.online = False
            self._raise("", al.OFFLINE, "warning", "status offline (last will)", now)
            self._evaluate(now, "status offline (last will or clean stop)")

    def check_heartbeat(self, now: float) -> None:
        if self.online and now - self.last_seen > self.cfg.heartbeat_s:
            self.online = False
            text = f"no message for {self.cfg.heartbeat_s:g}s (heartbeat timeout)"
            self._raise("", al.OFFLINE, "warning", text, now)
            self._evaluate(now, text)

    def set_maintenance(self, on: bool, who: str, now: float) -> None:
        self.maintenance = who if on else None
        self._evaluate(now, f"maintenance {'on' if on else 'off'} by {who}")

    # -- state machine ------------------------------------------------------------------------

    def desired(self) -> str:
        if self.maintenance is not None:
            return MAINTENANCE
        if not self.online:
            return OFFLINE
        if self.error:
            return ERROR
        if not self.had_data:
            return INITIALIZING
        level = max((b.level for b in self.bands), default=0)
        if level == 0 and any(f.active for f in self.flatlines):
            level = 1  # a stuck reading cannot be trusted: degraded, not critical
        return LEVEL_STATES[level]

    def _level_reason(self) -> str:
        worst = max(self.bands, key=lambda b: b.level, default=None)
        if worst is not None and worst.level > 0:
            return worst.describe()
        stuck = next((f for f in self.flatlines if f.active), None)
        if stuck is not None:
            return stuck.describe()
        return "all metrics inside normal"

    def _evaluate(self, now: float, reason: str) -> None:
        new = self.desired()
        if new != self.state:
            old = self.state
            self.state, self.since, self.reason = new, now, reason
            self._on_transition(self, old, new, reason, now)

    def _raise(self, metric: str, kind: str, severity: str, text: str, now: float) -> None:
        if self.maintenance is None:  # a twin in maintenance raises nothing
            self._book.raise_(self.id, metric, kind, severity, text, now)

    def _band_alert(self, band: Band, now: float) -> None:
        if band.level == 0:
            self._book.resolve(self.id, band.name, al.THRESHOLD, band.describe(), now)
        else:
            severity = "warning" if band.level == 1 else "critical"
            self._raise(band.name, al.THRESHOLD, severity, band.describe(), now)

    def _anomaly_alert(self, det: RobustDetector, now: float) -> None:
        if det.active:
            self._raise(det.name, al.ANOMALY, "warning", det.describe(), now)
        elif not det.active:
            self._book.resolve(self.id, det.name, al.ANOMALY, "back near the median", now)

    def _stuck_alert(self, flat: FlatLine, now: float) -> None:
        if flat.active:
            self._raise(flat.name, al.STUCK, "warning", flat.describe(), now)
        else:
            self._book.resolve(self.id, flat.name, al.STUCK, "the value moves again", now)

    # -- views --------------------------------------------------------------------------------

    @property
    def open_alerts(self) -> int:
        return self._book.count(self.id)

    def snapshot(self) -> dict[str, Any]:
        """The twin as the API and the retained state topic show it."""
        return {
            "id": self.id, "uns_path": self.cfg.uns_path, "state": self.state,
            "since": self.since, "reason": self.reason, "online": self.online,
            "maintenance": self.maintenance, "last_seen": self.last_seen or None,
            "last_ts": self.last_ts, "seq": self.seq, "values": dict(self.values),
            "levels": {b.name: LEVEL_NAMES[b.level] for b in self.bands},
            "quality": self.quality.as_dict(), "messages": self.messages,
            "invalid": self.invalid, "last_invalid": self.last_invalid,
            "open_alerts": self.open_alerts,
        }


def flatlines_for(cfg: TwinConfig) -> list[FlatLine]:
    """One flat-line detector per float metric, unless the profile turned them off (0)."""
    if cfg.stuck_after <= 0:
        return []
    return [FlatLine(name, cfg.stuck_after) for name, spec in cfg.metrics.items()
            if spec.type == "float"]
