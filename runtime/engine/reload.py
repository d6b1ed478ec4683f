"""Apply a reconcile plan to a running engine: twins added, removed, moved, reconfigured in place.

Part of the engine: it reaches into the engine's and twins' internals on purpose. Loading
the lab and planning happen in any thread (`prepare`); the engine thread applies the plan
(`apply`) between two batches, so no message sees half a reload. A reconfigured or moved twin
keeps its object, so its state, counters, quality and open alerts stay; storage is keyed by
device id, so its history stays attached too.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from ..labfiles import LabFiles, TwinConfig, load_lab
from ..reconcile import ReconcilePlan, plan_twins
from . import alerts as al
from .anomaly import AnomalyConfig, FlatLine, RobustDetector
from .health import OFFLINE, Band, bands_for
from .twin import Twin, flatlines_for
from .validator import compile_validator

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger(__name__)

TELEMETRY, STATUS, CONTROL = 0, 1, 2  # the engine's route kinds
TWIN_LEVEL = "_twin"
REMOVED_REASON = "removed from the inventory"


def prepare(engine: Engine) -> tuple[LabFiles, ReconcilePlan]:
    """Read the lab folder again and plan against what the engine runs (any thread)."""
    lab = load_lab(engine.lab.root)
    loaded = {tid: twin.cfg for tid, twin in list(engine.twins.items())}
    return lab, plan_twins(loaded, lab.twins)


def _routes(engine: Engine, twin: Twin) -> dict[str, tuple[Twin, int]]:
    ent = engine.lab.runtime.enterprise
    return {twin.cfg.topics.telemetry: (twin, TELEMETRY), twin.cfg.topics.status: (twin, STATUS),
            f"{ent}/{TWIN_LEVEL}/{twin.id}/control": (twin, CONTROL)}


def _numeric(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]


def reconfigure(twin: Twin, cfg: TwinConfig, anomaly: AnomalyConfig, now: float) -> None:
    """Give a twin a new config and keep its state: bands and detectors of metrics whose spec
    did not change are kept (with their levels and windows); new bands start at the level the
    last value has under the new thresholds, so the state follows at once."""
    old_bands = {b.name: b for b in twin.bands}
    bands: list[Band] = []
    for band in bands_for(cfg.metrics, twin._hyst):
        previous = old_bands.get(band.name)
        if previous is not None and previous.spec == band.spec:
            bands.append(previous)
            continue
        value = twin.values.get(band.name)
        if isinstance(value, int | float) and _numeric(value):
            band.value = float(value)
            band.level = band.raw_level(band.value)
        if band.level != (previous.level if previous else 0):
            twin._band_alert(band, now)
        bands.append(band)
    kept = {b.name for b in bands}
    for name, previous in old_bands.items():
        if name not in kept and previous.level:
            twin._book.resolve(twin.id, name, al.THRESHOLD,
                               "the metric has no thresholds any more", now)
    old_detectors = {d.name: d for d in twin.detectors}
    detectors: list[RobustDetector] = []
    for name, spec in cfg.metrics.items():
        if not spec.numeric:
            continue
        detector = old_detectors.get(name)
        if detector is not None and twin.cfg.metrics.get(name) == spec:
            detectors.append(detector)
        else:
            detectors.append(RobustDetector(name, spec, anomaly))
    old_flatlines = {f.name: f for f in twin.flatlines}
    flatlines: list[FlatLine] = []
    for flat in flatlines_for(cfg):
        same = old_flatlines.get(flat.name)
        if same is not None and same.after == flat.after:
            flatlines.append(same)
            del old_flatlines[flat.name]
        else:  # a new count starts afresh, and raises again if the value still sits still
            flatlines.append(flat)
    for name, dropped in old_flatlines.items():
        if dropped.active:
            twin._book.resolve(twin.id, name, al.STUCK, "reconfigured", now)
    twin.cfg = cfg
    twin.validate = compile_validator(cfg.telemetry_schema, cfg.id)
    twin.bands = bands
    twin.detectors = detectors
    twin.flatlines = flatlines
    twin.n_metrics = max(len(cfg.metrics), 1)
    twin.quality.period = cfg.period_s
    twin.quality.late = max(cfg.heartbeat_s - cfg.period_s, cfg.period_s)
    twin._evaluate(now, "reconfigured from the inventory")


def apply(engine: Engine, lab: LabFiles, plan: ReconcilePlan, now: float) -> None:
    """Apply `plan` (made by `prepare` against `lab`) to the engine; engine thread only."""
    cfg = engine.config
    for twin_id in plan.removed:
        twin = engine.twins.pop(twin_id, None)
        if twin is None:
            continue
        for topic in _routes(engine, twin):
            engine._routes.pop(topic, None)
        for key in [k for k in engine.book.open if k[0] == twin_id]:
            engine.book.resolve(twin_id, key[1], key[2], REMOVED_REASON, now)
        if twin.state != OFFLINE:  # the history records that it left
            engine._out.transitions.append(
                (now, twin_id, twin.state, OFFLINE, REMOVED_REASON))
        engine._publish(twin.cfg.twin_state_topic, b"", 1, True)
    for twin_id in sorted({*plan.moved, *plan.reconfigured}):
        twin = engine.twins.get(twin_id)
        if twin is None:
            continue
        for topic in _routes(engine, twin):
            engine._routes.pop(topic, None)
        if twin_id in plan.reconfigured:
            reconfigure(twin, lab.twins[twin_id], cfg.anomaly, now)
        else:
            twin.cfg = lab.twins[twin_id]  # the state topic is keyed by id: nothing to republish
    old_aggregates = set(engine.lab.runtime.aggregates.values())
    engine.lab = lab
    for twin_id in plan.added:
        engine.twins[twin_id] = Twin(lab.twins[twin_id], cfg.hysteresis, cfg.anomaly, engine.book,
                                     engine._on_transition)
    for twin_id in sorted({*plan.added, *plan.moved, *plan.reconfigured}):
        engine._routes.update(_routes(engine, engine.twins[twin_id]))
    engine.commands.set_topics({t.id: t.cfg.topics.command for t in engine.twins.values()})
    for topic in sorted(old_aggregates - set(lab.runtime.aggregates.values())):
        engine._publish(topic, b"", 0, True)  # a level that is gone: clear its retained summary
    log.info("engine: reloaded: %d added, %d removed, %d moved, %d reconfigured, %d unchanged",
             len(plan.added), len(plan.removed), len(plan.moved), len(plan.reconfigured),
             len(plan.unchanged))
