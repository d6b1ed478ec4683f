"""GET /: the dashboard page; its assets are served from /dashboard/ (no CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "dashboard"

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "index.html", media_type="text/html")
