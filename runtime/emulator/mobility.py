"""A mobile device (AGV) that dwells at a cell, then drives to another of its line's cells."""

from __future__ import annotations

import math
import random

from ..labfiles import MetricSpec
from .signals import band

DEFAULT_AREA = (0.0, 200.0, 0.0, 100.0)  # x min, x max, y min, y max in metres
DWELL_PERIODS = (3, 8)
CELL_SPACING_M = 10.0  # neighbouring cells of a line: a few seconds' drive apart


def _range(metric: MetricSpec | None, default: tuple[float, float]) -> tuple[float, float]:
    if metric is None or metric.min is None or metric.max is None:
        return default
    return (metric.min, metric.max)


def cell_positions(cells: tuple[str, ...], x: MetricSpec | None,
                   y: MetricSpec | None) -> dict[str, tuple[float, float]]:
    """Where each cell is: every CELL_SPACING_M along x, alternating between two aisles in y.

    Deterministic, so the twin engine or a dashboard can place cells with the same rule.
    """
    x_lo, x_hi = _range(x, DEFAULT_AREA[:2])
    y_lo, y_hi = _range(y, DEFAULT_AREA[2:])
    spacing = min(CELL_SPACING_M, (x_hi - x_lo) / (len(cells) + 1))
    return {cell: (round(x_lo + spacing * (i + 1), 3),
                   round(y_lo + (y_hi - y_lo) * (0.3 if i % 2 else 0.7), 3))
            for i, cell in enumerate(cells)}


class AgvMotion:
    """Position, speed and current cell; moves at a cruise speed inside the speed band."""

    def __init__(self, cells: tuple[str, ...], metrics: dict[str, MetricSpec],
                 period_s: float, rng: random.Random) -> None:
        self.rng = rng
        self.period_s = period_s
        self.positions = cell_positions(cells or ("home",), metrics.get("x"), metrics.get("y"))
        self.cells = list(self.positions)
        speed = metrics.get("speed")
        lo, hi = band(speed) if speed is not None else (0.0, 1.5)
        self.cruise = lo + (hi - lo) * 0.7
        self.cell: str | None = rng.choice(self.cells)
        self.x, self.y = self.positions[self.cell]
        self.target: str | None = None
        self.speed = 0.0
        self.dwell_s = self._dwell()

    def _dwell(self) -> float:
        return self.rng.uniform(*DWELL_PERIODS) * self.period_s

    def step(self, dt: float) -> None:
        if self.target is None:
            self.speed = 0.0
            self.dwell_s -= dt
            if self.dwell_s <= 0 and len(self.cells) > 1:
                self.target = self.rng.choice([c for c in self.cells if c != self.cell])
                self.cell = None
            return
        tx, ty = self.positions[self.target]
        distance = math.hypot(tx - self.x, ty - self.y)
        self.speed = round(self.cruise * self.rng.uniform(0.95, 1.05), 3)
        travel = self.speed * dt
        if travel >= distance:
            self.x, self.y, self.cell, self.target = tx, ty, self.target, None
            self.dwell_s = self._dwell()
        else:
            self.x += (tx - self.x) * travel / distance
            self.y += (ty - self.y) * travel / distance

    def values(self) -> dict[str, float]:
        return {"x": round(self.x, 3), "y": round(self.y, 3), "speed": self.speed}
