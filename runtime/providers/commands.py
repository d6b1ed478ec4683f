"""Send one command to a device as the runtime user and wait for its ack on the status topic."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from ..emulator.mqtt import MqttConnection, open_connection
from ..emulator.spec import read_password, read_runtime
from ..labfiles import TWINS_DIR, load_twin


async def _command(lab_dir: Path, device_id: str, command: str, args: dict[str, Any],
                   timeout: float) -> dict[str, Any]:
    runtime = read_runtime(lab_dir)
    twin = load_twin(lab_dir / TWINS_DIR / f"{device_id}.json")
    command_id = uuid.uuid4().hex[:12]
    acked: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    def on_message(topic: str, payload: bytes) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            return
        if isinstance(message, dict) and message.get("ack") == command_id and not acked.done():
            acked.set_result(message)

    connection = MqttConnection(f"dtn-cli-{os.getpid()}", runtime.runtime_user,
                                read_password(lab_dir, runtime.runtime_user),
                                on_message=on_message)
    await open_connection(connection, runtime.broker.host, runtime.broker.port, timeout=timeout)
    try:
        await connection.subscribe([(twin.topics.status, 1)])
        payload = {"id": command_id, "command": command, "args": args, "ts": time.time()}
        await connection.publish_confirmed(twin.topics.command, json.dumps(payload).encode())
        return await asyncio.wait_for(acked, timeout)
    finally:
        connection.disconnect()


def send_command(lab_dir: Path, device_id: str, command: str, args: dict[str, Any] | None = None,
                 timeout: float = 5.0) -> dict[str, Any]:
    """Publish a command on the device's command topic and return its ack.

    Raises:
        TimeoutError: no ack within `timeout` seconds (device offline, or the lab is down).
    """
    return asyncio.run(_command(lab_dir, device_id, command, args or {}, timeout))
