"""Health states of a twin and the per-metric threshold bands with hysteresis."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..labfiles import MetricSpec

OFFLINE = "offline"
INITIALIZING = "initializing"
HEALTHY = "healthy"
DEGRADED = "degraded"
CRITICAL = "critical"
ERROR = "error"
MAINTENANCE = "maintenance"
STATES = (OFFLINE, INITIALIZING, HEALTHY, DEGRADED, CRITICAL, ERROR, MAINTENANCE)
LEVEL_STATES = (HEALTHY, DEGRADED, CRITICAL)  # indexed by a band level 0, 1, 2
LEVEL_NAMES = ("normal", "warning", "critical")


@dataclass(frozen=True)
class Hysteresis:
    """How reluctant states are to change, so a value on a threshold does not flap.

    Attributes:
        deadband: to fall back into a band a value must be inside it by this fraction of the
            band's width (edges that coincide with the plausible min/max are not shrunk).
        confirm_up: consecutive samples beyond a threshold before the level rises.
        confirm_down: consecutive samples back inside (with deadband) before it falls.
        invalid_to_error: consecutive invalid messages that put a twin in error.
        valid_to_recover: consecutive valid messages that take it out of error.
    """

    deadband: float = 0.05
    confirm_up: int = 2
    confirm_down: int = 3
    invalid_to_error: int = 3
    valid_to_recover: int = 2


def _shrunk(band: tuple[float, float], spec: MetricSpec, deadband: float) -> tuple[float, float]:
    lo, hi = band
    margin = deadband * (hi - lo)
    lo_in = lo if spec.min is not None and lo <= spec.min else lo + margin
    hi_in = hi if spec.max is not None and hi >= spec.max else hi - margin
    return lo_in, hi_in


class Band:
    """The level (0 normal, 1 warning, 2 critical) of one numeric metric, with hysteresis."""

    __slots__ = ("name", "spec", "n_lo", "n_hi", "w_lo", "w_hi", "n_lo_in", "n_hi_in",
                 "w_lo_in", "w_hi_in", "level", "up", "down", "confirm_up", "confirm_down",
                 "value")

    def __init__(self, name: str, spec: MetricSpec, hyst: Hysteresis) -> None:
        normal = spec.normal or spec.warning
        warning = spec.warning or (-math.inf, math.inf)
        assert normal is not None
        self.name, self.spec = name, spec
        self.n_lo, self.n_hi = normal
        self.w_lo, self.w_hi = warning
        self.n_lo_in, self.n_hi_in = _shrunk(normal, spec, hyst.deadband)
        if spec.warning:
            self.w_lo_in, self.w_hi_in = _shrunk(warning, spec, hyst.deadband)
        else:
            self.w_lo_in, self.w_hi_in = warning
        self.level = 0
        self.up = self.down = 0
        self.confirm_up, self.confirm_down = hyst.confirm_up, hyst.confirm_down
        self.value: float = math.nan

    def raw_level(self, v: float) -> int:
        if self.n_lo <= v <= self.n_hi:
            return 0
        return 1 if self.w_lo <= v <= self.w_hi else 2

    def update(self, v: float) -> bool:
        """Feed one sample; return True when the confirmed level changed."""
        self.value = v
        level = self.level
        if level == 0 and self.n_lo <= v <= self.n_hi:  # the common case, kept cheap
            self.up = 0
            return False
        raw = self.raw_level(v)
        if raw > level:
            self.down = 0
            self.up += 1
            if self.up >= self.confirm_up:
                self.level, self.up = raw, 0
                return True
            return False
        self.up = 0
        if self.n_lo_in <= v <= self.n_hi_in:
            inner = 0
        elif self.w_lo_in <= v <= self.w_hi_in:
            inner = 1
        else:
            inner = 2
        if inner < level:
            self.down += 1
            if self.down >= self.confirm_down:
                self.level, self.down = inner, 0
                return True
        else:
            self.down = 0
        return False

    def describe(self) -> str:
        v = self.value
        if self.level == 0:
            return f"{self.name}={v:g} back inside normal [{self.n_lo:g}, {self.n_hi:g}]"
        if self.level == 1:
            return f"{self.name}={v:g} outside normal [{self.n_lo:g}, {self.n_hi:g}]"
        return f"{self.name}={v:g} outside warning [{self.w_lo:g}, {self.w_hi:g}]"


def bands_for(metrics: dict[str, MetricSpec], hyst: Hysteresis) -> list[Band]:
    """One band per numeric metric that has thresholds."""
    return [Band(name, spec, hyst) for name, spec in metrics.items()
            if spec.numeric and (spec.normal or spec.warning)]
