"""WS /ws: live state changes, telemetry and alerts, filtered by UNS prefix, newest-wins.

Authenticate with the subprotocols `["dtnlab.v1", "bearer.<token>"]` (browsers cannot set
headers on a WebSocket) or `?token=`. Filter with `?prefix=` (repeatable) and `?kinds=`, or
later with a message {"type": "subscribe", "prefixes": [...], "kinds": [...]}. Every message
is one JSON object with a `type`: hello, state, telemetry, alert, status, pong, error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ..deps import State
from ..errors import ApiError, error_response
from ..hub import KINDS, Subscriber
from ..live import TELEMETRY
from ..state import ApiState
from ..tokens import InvalidToken, Principal
from ..users import allows

log = logging.getLogger(__name__)

router = APIRouter()
PROTOCOL = "dtnlab.v1"
TOKEN_PROTOCOL = "bearer."
MAX_CLIENT_MESSAGE = 8192
CLOSE_UNAUTHORIZED = 4401


def _offered(websocket: WebSocket) -> list[str]:
    header = websocket.headers.get("sec-websocket-protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


def _token(websocket: WebSocket) -> str | None:
    for protocol in _offered(websocket):
        if protocol.startswith(TOKEN_PROTOCOL):
            return protocol[len(TOKEN_PROTOCOL):]
    return websocket.query_params.get("token")


async def _deny(websocket: WebSocket, message: str) -> None:
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(error_response(
            401, message, headers={"WWW-Authenticate": "Bearer"}))
    else:
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason=message)


def _kinds(raw: Any) -> list[str]:
    if isinstance(raw, str):
        raw = raw.split(",")
    return [k for k in raw if k in KINDS] if isinstance(raw, list) else list(KINDS)


@router.websocket("/ws")
async def live(websocket: WebSocket, state: State) -> None:
    token = _token(websocket)
    principal: Principal | None = None
    if token:
        with contextlib.suppress(InvalidToken):
            principal = state.tokens.verify(token)
    if principal is None or not allows(principal.role, "viewer"):
        await _deny(websocket, "a valid bearer token is required")
        return
    await websocket.accept(subprotocol=PROTOCOL if PROTOCOL in _offered(websocket) else None)
    params = websocket.query_params
    kinds = _kinds(params.get("kinds")) if params.get("kinds") else list(KINDS)
    sub = Subscriber(params.getlist("prefix"), kinds, state.settings.ws_max_pending)
    state.hub.add(sub)
    try:
        await _send_json(websocket, {
            "type": "hello", "user": principal.name, "role": principal.role,
            "lab": state.index.name, "prefixes": list(sub.prefixes), "kinds": sorted(sub.kinds),
            "expires_at": principal.expires})
        await _queue_snapshot(state, sub)
        async with anyio.create_task_group() as tasks:

            async def receive_then_stop() -> None:
                with contextlib.suppress(WebSocketDisconnect):
                    await _receive(websocket, sub, state)
                tasks.cancel_scope.cancel()

            async def send_then_stop() -> None:
                with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                    await _send(websocket, sub, principal.expires)
                tasks.cancel_scope.cancel()

            tasks.start_soon(receive_then_stop)
            tasks.start_soon(send_then_stop)
    finally:
        state.hub.remove(sub)


async def _send_json(websocket: WebSocket, message: dict[str, Any]) -> None:
    await websocket.send_text(orjson.dumps(message).decode())


async def _queue_snapshot(state: ApiState, sub: Subscriber) -> None:
    """States and newest values of what the subscriber wants, before anything live."""
    stored: dict[str, list[dict[str, Any]]] = {}
    if TELEMETRY in sub.kinds:
        with contextlib.suppress(ApiError):  # no stored values: live ones will come
            for row in await state.adb(state.store.latest):
                stored.setdefault(str(row["device"]), []).append(row)
    for message in state.hub.snapshot(sub, stored):
        sub.offer(message["type"], message["twin"], message)


async def _send(websocket: WebSocket, sub: Subscriber, expires: float) -> None:
    """Send what waits; sleep until more arrives; close when the token expires."""
    while True:
        remaining = expires - time.time()
        if remaining <= 0:
            await websocket.close(code=CLOSE_UNAUTHORIZED, reason="token expired")
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sub.wake.wait(), min(remaining, 30.0))
        for message in sub.take():
            await _send_json(websocket, message)


async def _receive(websocket: WebSocket, sub: Subscriber, state: ApiState) -> None:
    """Client messages: subscribe (new filter, then a fresh snapshot) and ping."""
    while True:
        text = await websocket.receive_text()
        try:
            if len(text) > MAX_CLIENT_MESSAGE:
                raise ValueError("message too large")
            msg = orjson.loads(text)
            if not isinstance(msg, dict):
                raise ValueError("expected a JSON object")
        except ValueError as exc:
            sub.offer("error", "error", {"type": "error", "message": str(exc)})
            continue
        if msg.get("type") == "subscribe":
            prefixes = msg.get("prefixes") or []
            if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
                sub.offer("error", "error", {"type": "error",
                                             "message": "prefixes must be a list of strings"})
                continue
            sub.set_filter(prefixes, _kinds(msg.get("kinds", list(KINDS))))
            state.hub.watch()
            sub.pending.clear()
            sub.offer("subscribed", "subscribed", {"type": "subscribed",
                                                   "prefixes": list(sub.prefixes),
                                                   "kinds": sorted(sub.kinds)})
            await _queue_snapshot(state, sub)
        elif msg.get("type") == "ping":
            sub.offer("pong", "pong", {"type": "pong", "ts": time.time()})
