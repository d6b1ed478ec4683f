"""Realistic values per metric type: a daily cycle, slow mean-reverting drift and noise."""

from __future__ import annotations

import math
import random

from ..labfiles import MetricSpec

DAY_S = 86400.0
# Fractions of the normal band: together they keep readings inside it nearly always.
DAILY_AMPLITUDE = 0.15
WANDER_SD = 0.07  # stationary standard deviation of the slow drift
WANDER_TAU_S = 600.0  # the slow drift forgets its past over about ten minutes
NOISE_SD = 0.025
STR_STATES = ("running", "idle")


def band(metric: MetricSpec) -> tuple[float, float]:
    """The range values should stay in: normal, else the middle of warning or min..max."""
    if metric.normal is not None:
        return metric.normal
    for lo, hi in (metric.warning or (None, None), (metric.min, metric.max)):
        if lo is not None and hi is not None:
            return (lo + (hi - lo) * 0.25, hi - (hi - lo) * 0.25)
    base = metric.min if metric.min is not None else (
        metric.max - 100 if metric.max is not None else 0.0)
    return (base + 40.0, base + 60.0)


def clamp(metric: MetricSpec, value: float) -> float:
    if metric.min is not None and value < metric.min:
        return metric.min
    if metric.max is not None and value > metric.max:
        return metric.max
    return value


def cast(metric: MetricSpec, value: float) -> float | int:
    return round(value) if metric.type == "int" else round(value, 3)


class NumericSignal:
    """center + daily cycle + Ornstein-Uhlenbeck wander + white noise, clamped to min..max."""

    __slots__ = ("center", "day_s", "metric", "offset", "phase", "rng", "span", "wander")

    def __init__(self, metric: MetricSpec, rng: random.Random, day_s: float = DAY_S) -> None:
        lo, hi = band(metric)
        self.metric = metric
        self.rng = rng
        self.center = (lo + hi) / 2
        self.span = (hi - lo) or 1.0
        self.phase = rng.random()
        self.day_s = day_s
        self.wander = rng.gauss(0.0, WANDER_SD) * self.span
        self.offset = 0.0  # a setpoint change by command moves the center

    def sample(self, now: float, dt: float) -> float | int:
        decay = math.exp(-dt / WANDER_TAU_S)
        self.wander = (self.wander * decay
                       + self.rng.gauss(0.0, WANDER_SD * self.span * math.sqrt(1 - decay * decay)))
        angle = 2 * math.pi * (now / self.day_s + self.phase)
        daily = DAILY_AMPLITUDE * self.span * math.sin(angle)
        noise = self.rng.gauss(0.0, NOISE_SD * self.span)
        value = self.center + self.offset + daily + self.wander + noise
        return cast(self.metric, clamp(self.metric, value))


class BoolSignal:
    """Mostly true, with rare short excursions to false; a command can pin it."""

    __slots__ = ("pinned", "rng", "value")

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.value = True
        self.pinned: bool | None = None

    def sample(self, now: float, dt: float) -> bool:
        if self.pinned is not None:
            return self.pinned
        flip = 0.002 if self.value else 0.3
        if self.rng.random() < flip:
            self.value = not self.value
        return self.value


class StrSignal:
    """A small state machine: mostly "running", sometimes "idle", "stopped" when commanded."""

    __slots__ = ("pinned", "rng", "value")

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.value = STR_STATES[0]
        self.pinned: str | None = None

    def sample(self, now: float, dt: float) -> str:
        if self.pinned is not None:
            return self.pinned
        if self.rng.random() < (0.005 if self.value == STR_STATES[0] else 0.2):
            self.value = STR_STATES[1] if self.value == STR_STATES[0] else STR_STATES[0]
        return self.value


Signal = NumericSignal | BoolSignal | StrSignal


def make_signal(metric: MetricSpec, rng: random.Random, day_s: float = DAY_S) -> Signal:
    if metric.numeric:
        return NumericSignal(metric, rng, day_s)
    if metric.type == "bool":
        return BoolSignal(rng)
    return StrSignal(rng)
