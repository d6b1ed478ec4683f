"""The lab's HTTP API and dashboard: twins, history, alerts, commands, live WebSocket, JWT."""

from __future__ import annotations

from .main import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
