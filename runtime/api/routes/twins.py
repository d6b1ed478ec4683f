"""GET /twins, /twins/{id} and /twins/{id}/history."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from ...storage import Store
from ..deps import State, Viewer
from ..errors import ApiError, documented
from ..labindex import TwinInfo
from ..schemas import History, HistoryPoint, TwinDetail, TwinPage
from ..state import ApiState
from ..views import alert_view, twin_detail, twin_summary

router = APIRouter(prefix="/twins", tags=["twins"],
                   responses=documented(401, 403, 404, 422, 429, 503))

TwinId = Annotated[str, Path(max_length=200, description="the twin's device id",
                             examples=["aar-l1-c1-tt-01"])]
DEFAULT_WINDOW_S = 600.0
EPOCH_MAX = 1e11


def twin_or_404(state: ApiState, twin_id: str) -> TwinInfo:
    info = state.index.get(twin_id)
    if info is None:
        raise ApiError(404, f"no twin {twin_id!r} in lab {state.index.name}")
    return info


@router.get("", response_model=TwinPage, summary="Twins, filtered and paged")
async def list_twins(
    state: State, user: Viewer,
    prefix: Annotated[str, Query(max_length=500, description="UNS path prefix, whole segments",
                                 examples=["northwind/plant-aarhus/processing"])] = "",
    twin_state: Annotated[str | None, Query(alias="state", max_length=40,
                                            description="healthy, degraded, ...")] = None,
    role: Annotated[str | None, Query(max_length=100)] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> TwinPage:
    """Twins in UNS path order with their live state."""
    items = [twin_summary(info, state.feed) for info in state.index.under(prefix)
             if role is None or info.role == role]
    if twin_state is not None:
        items = [t for t in items if t.state == twin_state]
    start = (page - 1) * page_size
    return TwinPage(items=items[start:start + page_size], total=len(items), page=page,
                    page_size=page_size)


@router.get("/{twin_id}", response_model=TwinDetail, summary="One twin in full")
async def get_twin(twin_id: TwinId, state: State, user: Viewer) -> TwinDetail:
    """State, last values with their band, quality and open alerts."""
    info = twin_or_404(state, twin_id)
    live = state.feed.telemetry(twin_id)
    latest, alerts = await state.adb(_twin_rows, state.store, twin_id, live is None)
    return twin_detail(info, state.feed, latest, [alert_view(a, state.index) for a in alerts])


def _twin_rows(store: Store, twin_id: str,
               with_latest: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Both queries of a twin in one trip to the query threads."""
    return store.latest(twin_id) if with_latest else [], store.alerts("open", twin_id, 100)


@router.get("/{twin_id}/history", response_model=History, summary="A metric's history")
async def history(
    twin_id: TwinId, state: State, user: Viewer,
    metric: Annotated[str | None, Query(max_length=100,
                                        description="default: the twin's first metric")] = None,
    from_: Annotated[float | None, Query(alias="from", ge=0, le=EPOCH_MAX,
                                         description="epoch s; default: `to` - 600")] = None,
    to: Annotated[float | None, Query(ge=0, le=EPOCH_MAX,
                                      description="epoch s; default: now")] = None,
    bucket: Annotated[float | None, Query(gt=0, le=1e7, description="seconds per bucket: "
                                          "mean, min, max and count per bucket")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 5000,
) -> History:
    """Raw samples (oldest first) from storage, or one point per `bucket` seconds."""
    info = twin_or_404(state, twin_id)
    name = metric or next(iter(info.metrics), None)
    if name is None or name not in info.metrics:
        raise ApiError(404, f"twin {twin_id!r} has no metric {metric!r}; metrics are "
                            f"{', '.join(info.metrics)}")
    end = to if to is not None else time.time()
    start = from_ if from_ is not None else max(0.0, end - DEFAULT_WINDOW_S)
    if start > end:
        raise ApiError(422, "`from` is after `to`")
    rows = await state.adb(state.store.history, twin_id, name, start, end, bucket, limit)
    points = [HistoryPoint(ts=float(r["ts"]), value=r.get("value"), text=r.get("text"),
                           min=r.get("min"), max=r.get("max"),
                           count=int(r["count"]) if r.get("count") is not None else None)
              for r in rows]
    return History.model_validate({
        "twin": twin_id, "metric": name, "unit": info.metrics[name].unit, "from": start,
        "to": end, "bucket": bucket, "truncated": len(points) >= limit, "points": points})
