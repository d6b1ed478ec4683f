"""GET /health: broker, database and engine, without a token."""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter

from ..deps import State
from ..schemas import BrokerHealth, DatabaseHealth, EngineHealth, Health
from ..state import DB_ERRORS

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="Is the lab's API node healthy?")
async def health(state: State) -> Health:
    """The API's broker connection, a storage round trip, and the engine's status file.

    `ok`: all three fine; `degraded`: some; `down`: neither broker nor database.
    """
    start = time.perf_counter()
    try:
        await state.queries.run_async(state.store.alerts, "open", None, 1)
        database = DatabaseHealth(ok=True, kind=state.store.kind,
                                  latency_ms=round((time.perf_counter() - start) * 1000, 2))
    except DB_ERRORS as exc:
        database = DatabaseHealth(ok=False, kind=state.store.kind, error=str(exc)[:200])
    status = state.engine_status()
    running = state.engine_running(status)
    engine = EngineHealth(running=running)
    if status is not None:
        engine.lag_s = float(status.get("lag_s") or 0.0)
        engine.status_age_s = round(time.time() - float(status.get("ts", 0)), 3)
        engine.received_per_s = float(status.get("ingest", {}).get("received_per_s") or 0.0)
    broker = BrokerHealth(connected=state.feed.connected)
    overall: Literal["ok", "degraded", "down"]
    if broker.connected and database.ok and running:
        overall = "ok"
    elif broker.connected or database.ok:
        overall = "degraded"
    else:
        overall = "down"
    return Health(status=overall, lab=state.index.name, broker=broker, database=database,
                  engine=engine, twins=len(state.index.twins))
