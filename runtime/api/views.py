"""Turn what the feed heard and the store holds into the API's response models."""

from __future__ import annotations

from typing import Any

from .labindex import LabIndex, TwinInfo
from .live import LiveFeed
from .schemas import (
    Alert,
    Hierarchy,
    MetricInfo,
    MetricValue,
    Quality,
    Topics,
    TwinDetail,
    TwinSummary,
)

UNKNOWN = "unknown"


def twin_summary(info: TwinInfo, feed: LiveFeed) -> TwinSummary:
    state = feed.states.get(info.id) or {}
    quality = state.get("quality")
    return TwinSummary(
        id=info.id, name=info.name, role=info.role, uns_path=info.uns_path,
        hierarchy=Hierarchy(**info.cfg.hierarchy.model_dump()),
        state=str(state.get("state") or UNKNOWN), since=state.get("since"),
        maintenance=state.get("maintenance"),
        quality_score=quality.get("score") if isinstance(quality, dict) else None,
        device_status=feed.device_status.get(info.id))


def alert_view(row: dict[str, Any], index: LabIndex) -> Alert:
    return Alert(
        id=str(row["id"]), device=str(row["device"]), uns_path=index.path_of(str(row["device"])),
        metric=str(row.get("metric") or ""), kind=str(row.get("kind") or ""),
        severity=str(row.get("severity") or ""), message=str(row.get("message") or ""),
        raised_at=float(row["raised_at"]), resolved_at=row.get("resolved_at"),
        acked_at=row.get("acked_at"), acked_by=row.get("acked_by"),
        status="resolved" if row.get("resolved_at") is not None else "open")


def _levels(info: TwinInfo, values: dict[str, Any]) -> dict[str, str]:
    """A metric's band (normal, warning, critical) from its thresholds, without hysteresis."""
    levels = {}
    for name, spec in info.metrics.items():
        v = values.get(name)
        if not isinstance(v, int | float) or isinstance(v, bool) or not spec.numeric:
            continue
        normal, warning = spec.normal or spec.warning, spec.warning
        if normal is None:
            continue
        if normal[0] <= v <= normal[1]:
            levels[name] = "normal"
        elif warning is None or warning[0] <= v <= warning[1]:
            levels[name] = "warning"
        else:
            levels[name] = "critical"
    return levels


def stored_values(info: TwinInfo, rows: list[dict[str, Any]]
                  ) -> tuple[dict[str, Any], dict[str, float | None]]:
    """A twin's newest values as storage keeps them (numbers, text), typed as its metrics:
    values by metric, and when each was measured."""
    values: dict[str, Any] = {}
    stamps: dict[str, float | None] = {}
    for row in rows:
        metric = str(row["metric"])
        spec = info.metrics.get(metric)
        if spec is None:
            continue
        value = row.get("value") if row.get("value") is not None else row.get("text")
        if spec.type == "bool" and value is not None:
            value = bool(value)
        elif spec.type == "int" and isinstance(value, float):
            value = int(value)
        values[metric] = value
        ts = row.get("ts")
        stamps[metric] = float(ts) if isinstance(ts, int | float) else None
    return values, stamps


def twin_detail(info: TwinInfo, feed: LiveFeed, latest: list[dict[str, Any]],
                open_alerts: list[Alert]) -> TwinDetail:
    """A twin with its newest values: the feed's when it heard any, else the store's."""
    summary = twin_summary(info, feed)
    state = feed.states.get(info.id) or {}
    live = feed.telemetry(info.id)
    values: dict[str, MetricValue] = {}
    last_ts: float | None = None
    seq: int | None = None
    if live is not None and isinstance(live.get("values"), dict):
        ts = live.get("ts")
        last_ts = float(ts) if isinstance(ts, int | float) else None
        seq = live.get("seq") if type(live.get("seq")) is int else None
        raw = {k: v for k, v in live["values"].items() if k in info.metrics}
        values = {k: MetricValue(value=v, ts=last_ts) for k, v in raw.items()}
    else:
        raw, stamps = stored_values(info, latest)
        values = {k: MetricValue(value=v, ts=stamps[k]) for k, v in raw.items()}
        last_ts = max((t for t in stamps.values() if t is not None), default=None)
    for name, level in _levels(info, raw).items():
        values[name].level = level
    quality = state.get("quality")
    t = info.cfg.topics
    return TwinDetail(
        **summary.model_dump(), reason=state.get("reason"), previous=state.get("previous"),
        quality=Quality(**quality) if isinstance(quality, dict) and "score" in quality else None,
        metrics={name: MetricInfo(type=m.type, unit=m.unit, min=m.min, max=m.max,
                                  normal=list(m.normal) if m.normal else None,
                                  warning=list(m.warning) if m.warning else None)
                 for name, m in info.metrics.items()},
        values=values, last_ts=last_ts, seq=seq, period_s=info.cfg.period_s,
        heartbeat_s=info.cfg.heartbeat_s, open_alerts=open_alerts,
        topics=Topics(telemetry=t.telemetry, command=t.command, status=t.status, alert=t.alert,
                      state=info.cfg.twin_state_topic))
