"""POST /twins/{id}/commands: a command over MQTT, answered by the device's ack or a timeout."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Literal

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from ..deps import Client, Operator, State
from ..errors import ApiError, documented
from ..schemas import CommandRequest, CommandResult
from .twins import TwinId, twin_or_404

router = APIRouter(prefix="/twins", tags=["commands"],
                   responses=documented(400, 401, 403, 404, 413, 422, 429, 503))


@router.post("/{twin_id}/commands", response_model=CommandResult,
             summary="Send a command to the device and wait for its ack")
async def send_command(twin_id: TwinId, body: CommandRequest, state: State, user: Operator,
                       client: Client) -> CommandResult:
    """Publishes {"id", "command", "args", "ts"} on the device's command topic (QoS 1) and
    waits up to `timeout_s` for {"ack": id, "result": "ok"|"rejected", "detail"} on its status
    topic. The outcome is `acked`, `rejected` or `timed_out`; every command is audited."""
    info = twin_or_404(state, twin_id)
    if not state.feed.connected:
        raise ApiError(503, "the API is not connected to the broker", code="broker_unavailable")
    timeout = body.timeout_s or state.settings.command_timeout_s
    loop = asyncio.get_running_loop()
    acked: asyncio.Future[dict[str, Any]] = loop.create_future()

    def resolve(doc: dict[str, Any]) -> None:
        if not acked.done():
            acked.set_result(doc)

    def on_ack(doc: dict[str, Any]) -> None:  # paho's thread
        loop.call_soon_threadsafe(resolve, doc)

    command_id = uuid.uuid4().hex
    state.feed.expect_ack(command_id, on_ack)
    sent = time.perf_counter()
    state.feed.publish(info.cfg.topics.command, orjson.dumps(
        {"id": command_id, "command": body.command, "args": body.args, "ts": time.time()}), 1)
    try:
        ack = await asyncio.wait_for(acked, timeout)
        outcome: Literal["acked", "rejected", "timed_out"] = (
            "acked" if ack.get("result") == "ok" else "rejected")
        detail = str(ack.get("detail", ""))[:500]
        latency: float | None = round((time.perf_counter() - sent) * 1000, 2)
    except TimeoutError:
        outcome, detail, latency = "timed_out", f"no ack within {timeout:g}s", None
    finally:
        state.feed.forget_ack(command_id)
    result = CommandResult(id=command_id, twin=twin_id, command=body.command, result=outcome,
                           detail=detail, latency_ms=latency)
    await run_in_threadpool(state.audit.record, user.name, user.role, "command", twin_id,
                            outcome, client, {"id": command_id, "command": body.command,
                                              "args": body.args, "detail": detail})
    return result
