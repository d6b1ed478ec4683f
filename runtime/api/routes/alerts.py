"""GET /alerts and POST /alerts/{id}/ack."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from ..deps import Client, Operator, State, Viewer
from ..errors import ApiError, documented
from ..labindex import under
from ..schemas import AckResult, AlertPage
from ..views import alert_view

router = APIRouter(prefix="/alerts", tags=["alerts"],
                   responses=documented(401, 403, 422, 429, 503))
SCAN_LIMIT = 10_000  # alerts read from storage before filtering by path and severity
AlertId = Annotated[str, Path(max_length=100, examples=["19ac1e3f2b0-7"])]


@router.get("", response_model=AlertPage, summary="Alerts, newest first")
async def list_alerts(
    state: State, user: Viewer,
    status: Literal["open", "resolved", "all"] = "open",
    prefix: Annotated[str, Query(max_length=500, description="UNS path prefix")] = "",
    severity: Literal["info", "warning", "major", "critical"] | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertPage:
    twins = state.index.under(prefix)
    device = twins[0].id if len(twins) == 1 else None
    if not twins:
        rows = []
    else:
        rows = await state.adb(state.store.alerts, status, device, SCAN_LIMIT)
    index = state.index
    items = [alert_view(r, index) for r in rows
             if (severity is None or r.get("severity") == severity)
             and under(index.path_of(str(r["device"])), prefix)]
    start = (page - 1) * page_size
    return AlertPage(items=items[start:start + page_size], total=len(items), page=page,
                     page_size=page_size)


@router.post("/{alert_id}/ack", response_model=AckResult, responses=documented(404),
             summary="Acknowledge an alert")
def ack_alert(alert_id: AlertId, state: State, user: Operator, client: Client) -> AckResult:
    """Marks the alert acknowledged in storage (it stays open until its cause clears) and
    tells WebSocket clients; audited."""
    at = time.time()
    if not state.db(state.store.ack_alert, alert_id, user.name, at):
        raise ApiError(404, f"no alert {alert_id!r}")
    device = state.feed.alert_devices.get(alert_id) or next(
        (str(r["device"]) for r in state.db(state.store.alerts, "all", None, SCAN_LIMIT)
         if r["id"] == alert_id), "")
    state.audit.record(user.name, user.role, "ack", alert_id, "ok", client, {"device": device})
    state.notify_ack(alert_id, device, user.name, at)
    return AckResult(id=alert_id, acked_at=at, acked_by=user.name)
