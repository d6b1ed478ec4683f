"""GET /hierarchy: the ISA-95 levels of the lab, for the tree view."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import State, Viewer
from ..errors import documented
from ..schemas import HierarchyView, Level

router = APIRouter(tags=["hierarchy"], responses=documented(401, 403, 429))


@router.get("/hierarchy", response_model=HierarchyView, summary="Sites, areas, lines, cells")
async def hierarchy(state: State, user: Viewer) -> HierarchyView:
    """Every level with its UNS path and display name; twins hang below by their path."""
    return HierarchyView(lab=state.index.name, enterprise=state.index.enterprise,
                         levels=[Level(**lv) for lv in state.index.levels])
