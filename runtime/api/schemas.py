"""Request and response bodies of the API, with the examples shown in its OpenAPI schema."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

TWIN = "aar-l1-c1-tt-01"
PATH = "northwind/plant-aarhus/processing/line-1/aar-l1-c1/aar-l1-c1-tt-01"
Scalar = float | int | bool | str | None


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class Token(BaseModel):
    model_config = _examples({"access_token": "eyJhbGciOiJIUzI1NiIs...", "token_type": "bearer",
                              "expires_in": 3600, "user": "operator", "role": "operator"})
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    user: str
    role: str


class Me(BaseModel):
    model_config = _examples({"user": "viewer", "role": "viewer", "expires_at": 1764300000.0})
    user: str
    role: str
    expires_at: float


class BrokerHealth(BaseModel):
    connected: bool


class DatabaseHealth(BaseModel):
    ok: bool
    kind: str
    latency_ms: float | None = None
    error: str | None = None


class EngineHealth(BaseModel):
    running: bool
    lag_s: float | None = None
    status_age_s: float | None = None
    received_per_s: float | None = None


class Health(BaseModel):
    model_config = _examples({
        "status": "ok", "lab": "demo-plant", "broker": {"connected": True},
        "database": {"ok": True, "kind": "sqlite", "latency_ms": 0.4, "error": None},
        "engine": {"running": True, "lag_s": 0.003, "status_age_s": 0.4,
                   "received_per_s": 29.5},
        "twins": 58})
    status: Literal["ok", "degraded", "down"]
    lab: str
    broker: BrokerHealth
    database: DatabaseHealth
    engine: EngineHealth
    twins: int


class Hierarchy(BaseModel):
    site: str
    area: str
    line: str
    cell: str


class Quality(BaseModel):
    score: float
    completeness: float
    validity: float
    timeliness: float
    rate: float


# TwinDetail's example extends this one, so the two show the same twin.
TWIN_SUMMARY_EXAMPLE: dict[str, Any] = {
    "id": TWIN, "name": "AAR-L1-C1-TT-01", "role": "temperature-sensor", "uns_path": PATH,
    "hierarchy": {"site": "plant-aarhus", "area": "processing", "line": "line-1",
                  "cell": "aar-l1-c1"},
    "state": "healthy", "since": 1764300000.0, "maintenance": None,
    "quality_score": 0.98, "device_status": "online"}


class TwinSummary(BaseModel):
    model_config = _examples(TWIN_SUMMARY_EXAMPLE)
    id: str
    name: str
    role: str
    uns_path: str
    hierarchy: Hierarchy
    state: str = Field(description="offline, initializing, healthy, degraded, critical, error,"
                                   " maintenance; unknown before the engine reported")
    since: float | None = None
    maintenance: str | None = Field(default=None, description="who put the twin in maintenance")
    quality_score: float | None = None
    device_status: str | None = Field(default=None, description="the device's own online/offline")


class TwinPage(BaseModel):
    items: list[TwinSummary]
    total: int
    page: int
    page_size: int


class MetricInfo(BaseModel):
    type: str
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    normal: list[float] | None = None
    warning: list[float] | None = None


class MetricValue(BaseModel):
    value: Scalar = None
    ts: float | None = None
    level: str | None = Field(default=None, description="normal, warning or critical")


class Alert(BaseModel):
    model_config = _examples({
        "id": "19ac1e3f2b0-7", "device": TWIN, "uns_path": PATH, "metric": "temperature",
        "kind": "threshold", "severity": "critical",
        "message": "temperature=71.2 outside warning [10, 35]", "raised_at": 1764300000.0,
        "resolved_at": None, "acked_at": None, "acked_by": None, "status": "open"})
    id: str
    device: str
    uns_path: str
    metric: str
    kind: str
    severity: str
    message: str
    raised_at: float
    resolved_at: float | None = None
    acked_at: float | None = None
    acked_by: str | None = None
    status: Literal["open", "resolved"]


class AlertPage(BaseModel):
    items: list[Alert]
    total: int
    page: int
    page_size: int


class AckResult(BaseModel):
    model_config = _examples({"id": "19ac1e3f2b0-7", "acked_at": 1764300012.5,
                              "acked_by": "operator"})
    id: str
    acked_at: float
    acked_by: str


class Topics(BaseModel):
    telemetry: str
    command: str
    status: str
    alert: str
    state: str


class TwinDetail(TwinSummary):
    model_config = _examples({
        **TWIN_SUMMARY_EXAMPLE, "reason": "all metrics inside normal", "previous": "initializing",
        "quality": {"score": 0.98, "completeness": 1.0, "validity": 1.0, "timeliness": 0.95,
                    "rate": 0.97},
        "metrics": {"temperature": {"type": "float", "unit": "degC", "min": -50.0,
                                    "max": 150.0, "normal": [15.0, 30.0],
                                    "warning": [10.0, 35.0]}},
        "values": {"temperature": {"value": 22.4, "ts": 1764300010.0, "level": "normal"}},
        "last_ts": 1764300010.0, "seq": 512, "period_s": 2.0, "heartbeat_s": 15.0,
        "open_alerts": [],
        "topics": {"telemetry": f"{PATH}/telemetry", "command": f"{PATH}/command",
                   "status": f"{PATH}/status", "alert": f"{PATH}/alert",
                   "state": f"northwind/_twin/{TWIN}/state"}})
    reason: str | None = None
    previous: str | None = None
    quality: Quality | None = None
    metrics: dict[str, MetricInfo]
    values: dict[str, MetricValue]
    last_ts: float | None = None
    seq: int | None = None
    period_s: float
    heartbeat_s: float
    open_alerts: list[Alert]
    topics: Topics


class HistoryPoint(BaseModel):
    ts: float = Field(description="sample time, or bucket start when bucketed (epoch s)")
    value: float | None = Field(default=None, description="the value, or the bucket's mean")
    text: str | None = None
    min: float | None = None
    max: float | None = None
    count: int | None = None


class History(BaseModel):
    model_config = ConfigDict(populate_by_name=True, json_schema_extra={"examples": [{
        "twin": TWIN, "metric": "temperature", "unit": "degC", "from": 1764299400.0,
        "to": 1764300000.0, "bucket": 60.0, "truncated": False,
        "points": [{"ts": 1764299400.0, "value": 22.1, "text": None, "min": 21.8, "max": 22.5,
                    "count": 30}]}]})
    twin: str
    metric: str
    unit: str | None = None
    from_: float = Field(alias="from")
    to: float
    bucket: float | None = None
    truncated: bool
    points: list[HistoryPoint]


class CommandRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"command": "ping", "args": {}},
        {"command": "setpoint", "args": {"metric": "temperature", "value": 24.0},
         "timeout_s": 3.0}]})
    command: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$",
                         description="ping, identify, start, stop, set_period, setpoint, reboot,"
                                     " fault (the device decides)")
    args: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float | None = Field(default=None, gt=0, le=30,
                                    description="wait this long for the ack (default 5)")

    @field_validator("args")
    @classmethod
    def _sendable(cls, args: dict[str, Any]) -> dict[str, Any]:
        # JSON allows integers past 64 bits; the command payload cannot carry them.
        try:
            orjson.dumps(args)
        except TypeError as exc:
            raise ValueError(f"cannot be sent to the device: {exc}") from None
        return args


class CommandResult(BaseModel):
    model_config = _examples({"id": "4f1c0d6e9a2b4c8f", "twin": TWIN, "command": "ping",
                              "result": "acked", "detail": "pong", "latency_ms": 8.2})
    id: str
    twin: str
    command: str
    result: Literal["acked", "rejected", "timed_out"]
    detail: str
    latency_ms: float | None = None


class MaintenanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"action": "enter", "reason": "replacing the sensor"}, {"action": "leave"}]})
    action: Literal["enter", "leave"]
    reason: str = Field(default="", max_length=200)


class MaintenanceResult(BaseModel):
    model_config = _examples({"twin": TWIN, "maintenance": True, "by": "operator",
                              "state": "maintenance"})
    twin: str
    maintenance: bool
    by: str | None = None
    state: str


class Level(BaseModel):
    level: str
    path: str
    name: str


class HierarchyView(BaseModel):
    model_config = _examples({"lab": "demo-plant", "enterprise": "northwind",
                              "levels": [{"level": "site", "path": "northwind/plant-aarhus",
                                          "name": "Plant Aarhus"}]})
    lab: str
    enterprise: str
    levels: list[Level]


class TopologyNode(BaseModel):
    id: str
    name: str
    role: str
    twinned: bool
    uns_path: str
    state: str | None = None


class TopologyLink(BaseModel):
    a: str
    a_interface: str
    b: str
    b_interface: str
    label: str = ""
    impairment: dict[str, str] = Field(default_factory=dict)


class Topology(BaseModel):
    model_config = _examples({
        "nodes": [{"id": TWIN, "name": "AAR-L1-C1-TT-01", "role": "temperature-sensor",
                   "twinned": True, "uns_path": PATH, "state": "healthy"}],
        "links": [{"a": TWIN, "a_interface": "eth1", "b": "aar-l1-sw-01",
                   "b_interface": "eth2", "label": "", "impairment": {}}]})
    nodes: list[TopologyNode]
    links: list[TopologyLink]


class AuditEntry(BaseModel):
    model_config = _examples({"id": 12, "ts": 1764300000.0, "user": "operator",
                              "role": "operator", "action": "command", "target": TWIN,
                              "outcome": "acked", "client": "127.0.0.1",
                              "detail": {"command": "ping", "args": {}}})
    id: int
    ts: float
    user: str
    role: str
    action: str
    target: str
    outcome: str
    client: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntry]
