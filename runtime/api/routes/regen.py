"""POST /hooks/netbox (NetBox's signed webhook), GET /regen (the last regen, webhook counters)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from ...hooks import (
    SIGNATURE_HEADER,
    RegenScheduler,
    Selection,
    read_secret,
    relevant,
    signature_ok,
)
from ...labfiles import read_json
from ...regen_record import SOURCE_FILE, last_attempt
from ..deps import State, Viewer
from ..errors import ApiError

log = logging.getLogger(__name__)


def scheduler_of(request: Request, lab_dir: Path) -> RegenScheduler:
    """The app's one scheduler, made on first use (the lab folder comes from the app state)."""
    app_state = request.app.state
    scheduler: RegenScheduler | None = getattr(app_state, "regen_scheduler", None)
    if scheduler is None:
        scheduler = RegenScheduler(lab_dir)
        app_state.regen_scheduler = scheduler
    return scheduler


router = APIRouter(tags=["regen"])


@router.post("/hooks/netbox", status_code=202, summary="NetBox webhook: regenerate the lab",
             responses={401: {"description": "missing or wrong X-Hook-Signature"}})
async def netbox_hook(request: Request, state: State) -> JSONResponse:
    """Verify NetBox's signature, ignore objects outside the lab, and schedule one regen.

    No bearer token: NetBox authenticates with the HMAC-SHA512 signature of the body, keyed
    with the lab's secret (secrets/netbox-webhook.secret; `dtnlab netbox hook install`).
    """
    lab_dir = state.lab.root
    scheduler = scheduler_of(request, lab_dir)
    stats = scheduler.stats
    stats.received += 1
    body = await request.body()
    if not signature_ok(read_secret(lab_dir), body, request.headers.get(SIGNATURE_HEADER)):
        stats.refused += 1
        log.warning("refused a webhook from %s: bad or missing %s",
                    request.client.host if request.client else "?", SIGNATURE_HEADER)
        raise ApiError(401, f"missing or wrong {SIGNATURE_HEADER}",
                       headers={"WWW-Authenticate": "HMAC-SHA512"})
    try:
        event = json.loads(body)
    except ValueError:
        raise ApiError(400, "the body is not JSON") from None
    if not isinstance(event, dict):
        raise ApiError(400, "the body is not a JSON object")
    stats.last_event = time.time()
    source = read_json(lab_dir / SOURCE_FILE) or {}
    keep = relevant(event, Selection.from_source(source))
    if keep:
        stats.accepted += 1
        scheduler.poke()
    else:
        stats.ignored += 1
    log.info("webhook %s %s %s: %s", event.get("event"), event.get("object_type"),
             (event.get("data") or {}).get("id") if isinstance(event.get("data"), dict) else "",
             "regen scheduled" if keep else "outside the lab, ignored")
    return JSONResponse({"relevant": keep, "scheduled": keep}, status_code=202)


@router.get("/regen", summary="The last regeneration of the lab and the webhook counters")
def regen_status(request: Request, state: State, user: Viewer) -> dict[str, Any]:
    """run/regen.json (last attempt: ok or error with every problem) and webhook statistics."""
    scheduler = scheduler_of(request, state.lab.root)
    return {"last": last_attempt(state.lab.root),
            "webhook": scheduler.stats.as_dict()}
