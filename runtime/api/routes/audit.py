"""GET /audit: the audit log, for admins."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from ..audit import AuditQuery
from ..deps import Admin, State
from ..errors import documented
from ..schemas import AuditEntry, AuditPage

router = APIRouter(tags=["audit"], responses=documented(401, 403, 422, 429, 503))


@router.get("/audit", response_model=AuditPage, summary="Logins, commands, acks, maintenance")
def audit(
    state: State, user: Admin,
    action: Literal["login", "command", "ack", "maintenance"] | None = None,
    by: Annotated[str | None, Query(alias="user", max_length=100)] = None,
    target: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[float | None, Query(ge=0, le=1e11)] = None,
    until: Annotated[float | None, Query(ge=0, le=1e11)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Newest first."""
    query = AuditQuery(action=action, user=by, target=target, since=since, until=until,
                       limit=limit)
    rows = state.db(state.audit.query, query)
    return AuditPage(items=[AuditEntry(**r) for r in rows])
