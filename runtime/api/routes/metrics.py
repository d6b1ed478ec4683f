"""GET /metrics: Prometheus text exposition of ingest, validation, states, lag and the API."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from ...engine.health import STATES
from ...engine.validator import REASONS
from ..deps import State, Viewer
from ..errors import documented
from ..state import ApiState

router = APIRouter(tags=["metrics"], responses=documented(401, 403, 429))
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Exposition:
    """Prometheus text format: HELP and TYPE once per family, then its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, text: str,
               samples: Sequence[tuple[dict[str, str], float]]) -> None:
        self.lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{label_text}}} {_number(value)}" if label_text
                              else f"{name} {_number(value)}")

    def histogram(self, name: str, text: str,
                  samples: Sequence[tuple[str, dict[str, str], float]]) -> None:
        self.lines += [f"# HELP {name} {text}", f"# TYPE {name} histogram"]
        for suffix, labels, value in samples:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{suffix}{{{label_text}}} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(int(value))


def render(state: ApiState) -> str:
    status: dict[str, Any] = state.engine_status() or {}
    ingest = status.get("ingest", {})
    failures = status.get("failures", {})
    out = Exposition()
    out.family("dtn_engine_up", "gauge", "1 while the engine's status file is fresh.",
               [({}, 1 if state.engine_running(status or None) else 0)])
    out.family("dtn_ingest_messages_total", "counter",
               "Messages the engine received, and those that passed validation.",
               [({"result": "received"}, int(ingest.get("received", 0))),
                ({"result": "valid"}, int(ingest.get("valid", 0)))])
    out.family("dtn_ingest_rate", "gauge", "Messages per second over the last second.",
               [({"result": "received"}, float(ingest.get("received_per_s", 0.0))),
                ({"result": "valid"}, float(ingest.get("valid_per_s", 0.0)))])
    out.family("dtn_validation_failures_total", "counter", "Rejected messages by reason.",
               [({"reason": r}, int(failures.get(r, 0))) for r in REASONS])
    out.family("dtn_engine_lag_seconds", "gauge",
               "Age of the newest telemetry when the engine processed it.",
               [({}, float(status.get("lag_s", 0.0)))])
    out.family("dtn_engine_queue", "gauge", "Messages waiting in the engine.",
               [({}, int(status.get("queue", 0)))])
    out.family("dtn_open_alerts", "gauge", "Alerts open in the engine.",
               [({}, int(status.get("open_alerts", 0)))])
    states = Counter(str(doc.get("state")) for doc in state.feed.states.values())
    unknown = len(state.index.twins) - sum(states[s] for s in STATES)
    out.family("dtn_twins", "gauge", "Twins by health state, as the API sees them.",
               [({"state": s}, states[s]) for s in STATES] + [({"state": "unknown"}, unknown)])
    feed = state.feed
    out.family("dtn_api_mqtt_connected", "gauge", "1 while the API's MQTT session is up.",
               [({}, 1 if feed.connected else 0)])
    out.family("dtn_api_mqtt_messages_total", "counter", "Messages the API heard by kind.",
               [({"kind": k}, n) for k, n in sorted(feed.received.items())])
    out.family("dtn_api_ws_clients", "gauge", "Open WebSocket streams.",
               [({}, len(state.hub.subscribers))])
    out.family("dtn_api_ws_dropped", "gauge",
               "Messages replaced by newer ones for slow WebSocket clients now connected.",
               [({}, state.hub.dropped)])
    out.family("dtn_api_rate_limited_total", "counter", "Requests answered with 429.",
               [({}, state.limits.limited)])
    out.family("dtn_api_audit_failures_total", "counter", "Audit entries that failed to store.",
               [({}, state.audit.failures)])
    out.histogram("dtn_api_request_duration_seconds",
                  "Time from the request's arrival to its response, by route.",
                  state.limits.times.samples())
    return out.text()


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics",
            responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
                             "description": "Prometheus text format 0.0.4"}})
def metrics(state: State, user: Viewer) -> PlainTextResponse:
    return PlainTextResponse(render(state), media_type=CONTENT_TYPE)
