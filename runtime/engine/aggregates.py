"""Aggregates per hierarchy level (line, area, site): twins by state, mean quality, open alerts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .health import STATES
from .twin import Twin


def aggregate(twins: Iterable[Twin], paths: Iterable[str], now: float) -> dict[str, dict[str, Any]]:
    """One summary per level path; a twin counts in its site, area and line."""
    sums: dict[str, list[Any]] = {p: [dict.fromkeys(STATES, 0), 0.0, 0, 0] for p in paths}
    for twin in twins:
        for path in twin.cfg.level_paths:
            acc = sums.get(path)
            if acc is None:
                continue
            acc[0][twin.state] += 1
            acc[1] += twin.quality.score
            acc[2] += 1
            acc[3] += twin.open_alerts
    return {
        path: {"path": path, "ts": now, "twins": n, "states": states,
               "quality": round(quality / n, 4) if n else None, "open_alerts": open_alerts}
        for path, (states, quality, n, open_alerts) in sums.items()
    }
