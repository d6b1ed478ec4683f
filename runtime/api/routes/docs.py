"""GET /docs: Swagger UI from the project's own copy of its assets (no CDN: labs may be offline)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from swagger_ui_bundle import swagger_ui_path

from .dashboard import DASHBOARD_DIR

# Swagger UI's dist files as the swagger-ui-bundle-v2 package ships them (Apache-2.0).
SWAGGER_UI_DIR = Path(str(swagger_ui_path))
ASSETS_PATH = "/docs/assets"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def docs() -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "docs.html", media_type="text/html")
