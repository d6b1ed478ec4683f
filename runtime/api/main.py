"""The API application: create_app(lab_dir) builds it from a generated lab folder."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ..labfiles import load_lab
from ..storage import Store, open_store
from .audit import AuditLog
from .errors import install_error_handlers
from .guard import Guard, Limits
from .hub import Hub
from .labindex import LabIndex
from .live import LiveFeed
from .querypool import QueryPool
from .reload import reload_api
from .routes import ROUTERS
from .routes.dashboard import DASHBOARD_DIR
from .routes.docs import ASSETS_PATH, SWAGGER_UI_DIR
from .settings import Settings
from .state import ApiState
from .tokens import TokenService
from .users import UserBook

log = logging.getLogger(__name__)

DESCRIPTION = """\
The API node of a dtnlab Digital Twin Network lab: twins with their live state, history from
storage, alerts, commands to devices over MQTT, maintenance, topology, Prometheus metrics and a
WebSocket live stream (`/ws`, not shown here). The dashboard is at `/`.

Every route but `/health` needs `Authorization: Bearer <token>` from `POST /auth/token`;
the NetBox webhook `/hooks/netbox` is signed instead (HMAC-SHA512 of its body).
Roles: **viewer** reads; **operator** also sends commands, acks alerts and changes maintenance;
**admin** also reads `/audit`. Errors always have the shape
`{"error": {"status", "code", "message", "details"}}`; 429 carries `Retry-After`.
"""


def build_state(lab_dir: Path, settings: Settings, store: Store | None = None) -> ApiState:
    """Load the lab and everything the routes need; refuses placeholder secrets.

    Raises:
        LabFileError: the lab folder is incomplete.
        PlaceholderSecret: the JWT key is a placeholder.
        ValueError: users or keys cannot be read.
    """
    lab = load_lab(lab_dir)
    index = LabIndex(lab)
    users = UserBook.from_config(index.api_config.get("users"))
    tokens = TokenService(settings, lab.root, lab.runtime.lab, users)
    db_url, audit_url = settings.database_urls()
    feed = LiveFeed(lab)
    store = store or open_store(lab.run_dir, db_url)
    return ApiState(settings=settings, lab=lab, index=index, users=users, tokens=tokens,
                    store=store, feed=feed, hub=Hub(feed, index, settings.ws_flush_s),
                    audit=AuditLog(lab.root, audit_url), limits=Limits(settings),
                    queries=QueryPool(store))


async def start(state: ApiState, connect: bool) -> None:
    """Open the audit log, connect to the broker, start the WebSocket hub."""
    state.audit.open()
    if connect:
        if state.feed.started_at:  # a feed is not restarted: a new session, retained again
            state.feed = state.hub.feed = LiveFeed(state.lab)
        state.feed.start(wait_s=5.0)
    state.hub.start()
    # `dtnlab regen` SIGHUPs the node: new twins, paths and thresholds without a restart
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # main thread
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload_api, state)
    log.info("api: lab %s, %d twins, storage %s, audit %s", state.index.name,
             len(state.index.twins), state.store.kind, state.audit.kind)


async def stop(state: ApiState, connect: bool) -> None:
    await state.hub.stop()
    if connect:
        state.feed.stop()
    state.audit.close()
    state.queries.close()


def create_app(lab_dir: Path | str, settings: Settings | None = None, *,
               store: Store | None = None, connect: bool = True) -> FastAPI:
    """The API of one lab.

    Args:
        lab_dir: the generated lab folder (runtime.json, twins/, secrets/).
        settings: default: read from DTN_* environment variables.
        store: storage to query (default: the lab's, as the engine opens it).
        connect: connect to the lab's broker on startup (False for schema-only uses).
    """
    settings = settings or Settings()
    state = build_state(Path(lab_dir).resolve(), settings, store)

    lifespans = 0  # test clients may nest lifespans on one app: start once, stop once

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal lifespans
        lifespans += 1
        if lifespans == 1:
            await start(state, connect)
        try:
            yield
        finally:
            lifespans -= 1
            if lifespans == 0:
                await stop(state, connect)

    # /docs is the project's own page (routes/docs.py); ReDoc would load itself from a CDN.
    app = FastAPI(title=f"dtnlab API: {state.index.name}", version="1.0.0",
                  description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.api = state
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/dashboard", StaticFiles(directory=DASHBOARD_DIR), name="dashboard")
    app.mount(ASSETS_PATH, StaticFiles(directory=SWAGGER_UI_DIR), name="docs-assets")
    app.add_middleware(Guard, limits=state.limits)
    return app
