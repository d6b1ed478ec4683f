"""POST /twins/{id}/maintenance: the engine puts a twin in maintenance or takes it out."""

from __future__ import annotations

import asyncio
import time

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from ..deps import Client, Operator, State
from ..errors import ApiError, documented
from ..schemas import MaintenanceRequest, MaintenanceResult
from .twins import TwinId, twin_or_404

router = APIRouter(prefix="/twins", tags=["maintenance"],
                   responses=documented(400, 401, 403, 404, 413, 422, 429, 503, 504))
POLL_S = 0.05


@router.post("/{twin_id}/maintenance", response_model=MaintenanceResult,
             summary="Enter or leave maintenance")
async def maintenance(twin_id: TwinId, body: MaintenanceRequest, state: State, user: Operator,
                      client: Client) -> MaintenanceResult:
    """Publishes {"maintenance": true|false, "by": user} on the engine's control topic
    `<enterprise>/_twin/<id>/control` and waits until the twin's retained state shows it
    (504 when the engine does not confirm in time). While in maintenance a twin raises no
    threshold or anomaly alerts."""
    twin_or_404(state, twin_id)
    if not state.feed.connected:
        raise ApiError(503, "the API is not connected to the broker", code="broker_unavailable")
    wanted = body.action == "enter"
    state.feed.publish(state.feed.control_topic(twin_id), orjson.dumps(
        {"maintenance": wanted, "by": user.name, "reason": body.reason}), 1)
    deadline = time.monotonic() + state.settings.maintenance_timeout_s
    doc = state.feed.states.get(twin_id) or {}
    while (doc.get("maintenance") is not None) != wanted:
        if time.monotonic() > deadline:
            await run_in_threadpool(state.audit.record, user.name, user.role, "maintenance",
                                    twin_id, "timed_out", client,
                                    {"action": body.action, "reason": body.reason})
            raise ApiError(504, "the twin engine did not confirm the maintenance change",
                           code="engine_timeout")
        await asyncio.sleep(POLL_S)
        doc = state.feed.states.get(twin_id) or {}
    await run_in_threadpool(state.audit.record, user.name, user.role, "maintenance", twin_id,
                            body.action, client, {"action": body.action, "reason": body.reason})
    by = doc.get("maintenance")
    return MaintenanceResult(twin=twin_id, maintenance=wanted,
                             by=str(by) if by is not None else None,
                             state=str(doc.get("state") or "unknown"))
