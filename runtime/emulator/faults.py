"""Injectable faults: what each one does to a device's telemetry and connection."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..labfiles import MetricSpec
from .signals import band, cast, clamp

# spike: a few samples far outside the warning band, then back to normal by itself
# stuck: every value frozen at its last reading (the sequence and timestamps still advance)
# drift: one metric walks steadily out of normal, through warning, until recover
# dropout: no telemetry, the connection and its keepalives stay up
# offline: the TCP connection drops without DISCONNECT (the will fires), no reconnect
# recover: clears any fault; an offline device reconnects and sends its birth message
FAULT_KINDS = ("spike", "stuck", "drift", "dropout", "offline", "recover")
SPIKE_SAMPLES = 3
DRIFT_RAMP_PERIODS = 10  # periods for a drift to go from the center to the warning edge


class FaultError(ValueError):
    """A fault that cannot apply to this device (unknown kind, no numeric metric)."""


@dataclass
class Fault:
    """An active fault. `duration_s` (optional) ends it by itself, like a recover."""

    kind: str
    id: str = ""
    metric: str | None = None
    spec: MetricSpec | None = None
    samples_left: int = SPIKE_SAMPLES
    ramp_s: float = 0.0
    duration_s: float | None = None
    started: float = field(default_factory=time.time)

    def expired(self, now: float) -> bool:
        return self.duration_s is not None and now - self.started >= self.duration_s


def target_metric(metrics: dict[str, MetricSpec], name: str | None) -> str:
    """The metric a spike or drift acts on: the one named, else the first numeric with bands."""
    if name:
        if name in metrics and metrics[name].numeric:
            return name
        raise FaultError(f"no numeric metric {name!r}")
    numeric = [n for n, m in metrics.items() if m.numeric]
    if not numeric:
        raise FaultError("the device has no numeric metric")
    banded = [n for n in numeric if metrics[n].normal or metrics[n].warning]
    return (banded or numeric)[0]


def make_fault(kind: str, metrics: dict[str, MetricSpec], period_s: float,
               args: dict[str, Any] | None = None, fault_id: str = "") -> Fault:
    """Check a fault request against a device and return what the device will apply.

    Args:
        kind: one of FAULT_KINDS.
        metrics: the device's metrics.
        period_s: its telemetry period (a drift's default ramp is counted in periods).
        args: optional `metric` (spike, drift), `samples` (spike), `ramp_s` (drift),
            `duration_s` (any fault: recover by itself after this many seconds).
        fault_id: the request's id, reported back in acks and status files.
    """
    args = args or {}
    if kind not in FAULT_KINDS:
        raise FaultError(f"unknown fault {kind!r}; faults are {', '.join(FAULT_KINDS)}")
    try:
        duration = float(args["duration_s"]) if args.get("duration_s") is not None else None
        fault = Fault(kind=kind, id=fault_id, duration_s=duration,
                      samples_left=int(args.get("samples", SPIKE_SAMPLES)),
                      ramp_s=float(args.get("ramp_s", DRIFT_RAMP_PERIODS * period_s)))
    except (TypeError, ValueError) as exc:
        raise FaultError(f"bad fault arguments {args}: {exc}") from None
    if kind in ("spike", "drift"):
        fault.metric = target_metric(metrics, args.get("metric"))
        fault.spec = metrics[fault.metric]
    return fault


def _outer(metric: MetricSpec) -> tuple[float, float]:
    if metric.warning is not None:
        return metric.warning
    lo, hi = band(metric)
    return (lo - (hi - lo) / 2, hi + (hi - lo) / 2)


def _upward(metric: MetricSpec) -> bool:
    """Faults push upward unless the warning band already reaches the maximum."""
    return metric.max is None or _outer(metric)[1] < metric.max


def spike_value(metric: MetricSpec) -> float | int:
    """Halfway between the warning edge and the plausible limit: critical, not invalid."""
    lo, hi = band(metric)
    warn_lo, warn_hi = _outer(metric)
    if _upward(metric):
        limit = metric.max if metric.max is not None else warn_hi + 2 * (hi - lo)
        return cast(metric, warn_hi + (limit - warn_hi) / 2)
    limit = metric.min if metric.min is not None else warn_lo - 2 * (hi - lo)
    return cast(metric, warn_lo - (warn_lo - limit) / 2)


def drift_value(metric: MetricSpec, value: float, elapsed_s: float,
                ramp_s: float) -> float | int:
    """`value` moved away by (distance from center to the warning edge) per `ramp_s`."""
    lo, hi = band(metric)
    warn_lo, warn_hi = _outer(metric)
    center = (lo + hi) / 2
    step = (warn_hi - center) if _upward(metric) else (warn_lo - center)
    return cast(metric, clamp(metric, value + step * elapsed_s / max(ramp_s, 1e-3)))
