"""Anomaly detection per metric: robust z-score against a rolling median and MAD, and flat lines."""

from __future__ import annotations

from dataclasses import dataclass

from ..labfiles import MetricSpec


@dataclass(frozen=True)
class AnomalyConfig:
    """Window and thresholds; statistics are refreshed every `refresh` samples, not each."""

    window: int = 120
    warmup: int = 30
    refresh: int = 30
    threshold: float = 6.0  # robust standard deviations (1.4826 * MAD)
    clear_after: int = 5  # consecutive ordinary samples that resolve an anomaly


class RobustDetector:
    """Flags samples far from the rolling median; silent until `warmup` samples are seen."""

    __slots__ = ("name", "buf", "n", "pos", "median", "scale", "limit", "floor", "cfg",
                 "since", "active", "quiet", "value")

    def __init__(self, name: str, spec: MetricSpec, cfg: AnomalyConfig) -> None:
        self.name, self.cfg = name, cfg
        self.buf: list[float] = []
        self.n = self.pos = self.since = self.quiet = 0
        self.median = 0.0
        self.scale = 0.0
        self.limit = -1.0  # < 0: not armed yet
        band = spec.normal or spec.warning
        span = (band[1] - band[0]) if band else 0.0
        if not span and spec.min is not None and spec.max is not None:
            span = spec.max - spec.min
        # A flat signal has MAD 0: a floor keeps tiny jitter from looking infinite.
        self.floor = max(span * 0.005, 1e-9)
        self.active = False
        self.value = 0.0

    def update(self, x: float) -> int:
        """Feed a sample; return 1 when an anomaly starts, -1 when it clears, else 0."""
        self.value = x
        change = 0
        if self.limit >= 0.0:
            if abs(x - self.median) > self.limit:
                self.quiet = 0
                if not self.active:
                    self.active, change = True, 1
            elif self.active:
                self.quiet += 1
                if self.quiet >= self.cfg.clear_after:
                    self.active, change = False, -1
        cfg = self.cfg
        if self.n < cfg.window:
            self.buf.append(x)
        else:
            self.buf[self.pos] = x
        self.pos = (self.pos + 1) % cfg.window
        self.n += 1
        self.since += 1
        if self.n >= cfg.warmup and self.since >= cfg.refresh:
            self._refresh()
        return change

    def _refresh(self) -> None:
        self.since = 0
        ordered = sorted(self.buf)
        half = len(ordered) // 2
        med = ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2
        dev = sorted([abs(v - med) for v in ordered])
        mad = dev[half] if len(dev) % 2 else (dev[half - 1] + dev[half]) / 2
        self.median = med
        self.scale = max(1.4826 * mad, self.floor)
        self.limit = self.cfg.threshold * self.scale

    def describe(self) -> str:
        return (f"{self.name}={self.value:g} is {abs(self.value - self.median) / self.scale:.1f} "
                f"robust sigmas from the rolling median {self.median:g}")


class FlatLine:
    """Flags a float metric whose value repeats exactly for `after` readings in a row.

    A real analogue reading carries noise; the same float over and over means a frozen sensor
    or a gateway resending its last value. Ints, bools and strings hold still legitimately
    and are not judged this way.
    """

    __slots__ = ("name", "after", "value", "repeats", "active")

    def __init__(self, name: str, after: int) -> None:
        self.name, self.after = name, after
        self.value: float | None = None
        self.repeats = 0  # readings in a row equal to `value`, the first included
        self.active = False

    def update(self, x: float) -> int:
        """Feed a reading; return 1 when the flat line starts, -1 when it ends, else 0."""
        if x == self.value:
            self.repeats += 1
            if not self.active and self.repeats >= self.after:
                self.active = True
                return 1
            return 0
        self.value, self.repeats = x, 1
        if self.active:
            self.active = False
            return -1
        return 0

    def describe(self) -> str:
        return f"{self.name}={self.value:g} repeated exactly for {self.repeats} readings (stuck)"
