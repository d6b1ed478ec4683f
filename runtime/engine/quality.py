"""Data-quality score of a twin: completeness, validity, timeliness and rate, as moving averages."""

from __future__ import annotations

ALPHA = 0.1  # weight of the newest message in each moving average


class Quality:
    """Each component is in [0, 1]; `score` is their mean."""

    __slots__ = ("completeness", "validity", "timeliness", "rate", "period", "late",
                 "last_ts", "interval")

    def __init__(self, period_s: float, heartbeat_s: float) -> None:
        self.completeness = self.validity = self.timeliness = self.rate = 1.0
        self.period = period_s
        self.late = max(heartbeat_s - period_s, period_s)  # lag beyond period that scores 0
        self.last_ts = 0.0
        self.interval = 0.0

    def on_message(self, now: float, ts: float | None, valid: bool, completeness: float) -> None:
        self.validity += ALPHA * ((1.0 if valid else 0.0) - self.validity)
        self.completeness += ALPHA * (completeness - self.completeness)
        if ts is None:
            return
        lag = abs(now - ts)
        period = self.period
        timely = 1.0 if lag <= period else max(0.0, 1.0 - (lag - period) / self.late)
        self.timeliness += ALPHA * (timely - self.timeliness)
        if self.last_ts:
            gap = ts - self.last_ts
            self.interval = gap if not self.interval else self.interval + ALPHA * (
                gap - self.interval)
            iv = self.interval
            ratio = 0.0 if iv <= 0.0 else (iv / period if iv < period else period / iv)
            self.rate += ALPHA * (ratio - self.rate)
        self.last_ts = ts

    @property
    def score(self) -> float:
        return (self.completeness + self.validity + self.timeliness + self.rate) / 4.0

    def as_dict(self) -> dict[str, float]:
        return {"score": round(self.score, 4), "completeness": round(self.completeness, 4),
                "validity": round(self.validity, 4), "timeliness": round(self.timeliness, 4),
                "rate": round(self.rate, 4)}
