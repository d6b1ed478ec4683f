"""One router per resource; `ROUTERS` is the order they are mounted in."""

from __future__ import annotations

from fastapi import APIRouter

from . import (
    alerts,
    audit,
    auth,
    commands,
    dashboard,
    docs,
    health,
    hierarchy,
    maintenance,
    metrics,
    regen,
    topology,
    twins,
    ws,
)

ROUTERS: list[APIRouter] = [health.router, auth.router, twins.router, commands.router,
                            maintenance.router, alerts.router, hierarchy.router,
                            topology.router, metrics.router, audit.router, regen.router,
                            ws.router, dashboard.router, docs.router]
