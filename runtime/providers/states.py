"""Each twin's state as a running lab reports it: retained twin state, else device status topics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..emulator.mqtt import MqttConnection, MqttError, open_connection
from ..emulator.spec import read_password, read_runtime
from ..labfiles import LabFileError

ENGINE_STATUS = Path("run/engine/status.json")
QUIET_S = 0.3  # retained messages arrive in one burst after SUBACK


@dataclass
class TwinStates:
    """Twin id -> state; `source` says where they came from, `engine` is its status snapshot."""

    states: dict[str, str] = field(default_factory=dict)
    source: str = "none"
    engine: dict[str, Any] | None = None
    devices: dict[str, str] = field(default_factory=dict)  # device status: online | offline


def engine_status(lab_dir: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((lab_dir / ENGINE_STATUS).read_text())
    except (OSError, ValueError):
        return None
    return data


async def _retained(lab_dir: Path, wait_s: float) -> tuple[dict[str, str], dict[str, str]]:
    """(twin states, device status) from retained messages, read as the runtime user."""
    runtime = read_runtime(lab_dir)
    ent = runtime.enterprise
    twins: dict[str, str] = {}
    devices: dict[str, str] = {}
    last = [time.monotonic()]

    def on_message(topic: str, payload: bytes) -> None:
        with contextlib.suppress(ValueError, AttributeError):
            state = json.loads(payload).get("state")
            if not isinstance(state, str):
                return  # a command ack, not a state
            parts = topic.split("/")
            if parts[1] == "_twin":
                twins[parts[2]] = state
            else:
                devices[parts[-2]] = state
            last[0] = time.monotonic()

    connection = MqttConnection(f"dtn-status-{os.getpid()}", runtime.runtime_user,
                                read_password(lab_dir, runtime.runtime_user),
                                on_message=on_message)
    await open_connection(connection, runtime.broker.host, runtime.broker.port, timeout=3.0)
    try:
        await connection.subscribe([(f"{ent}/_twin/+/state", 0),
                                    (f"{ent}/+/+/+/+/+/status", 0)])
        last[0] = time.monotonic()  # retained messages follow the SUBACK
        deadline, expected = time.monotonic() + wait_s, len(runtime.twins)
        while (time.monotonic() < deadline and time.monotonic() - last[0] < QUIET_S
               and min(len(twins), len(devices)) < expected):
            await asyncio.sleep(0.05)
    finally:
        connection.disconnect()
    return twins, devices


def twin_states(lab_dir: Path, wait_s: float = 5.0) -> TwinStates:
    """What the lab says about its twins; an unreachable broker gives empty states."""
    result = TwinStates(engine=engine_status(lab_dir))
    try:
        twins, devices = asyncio.run(_retained(lab_dir, wait_s))
    except (OSError, MqttError, TimeoutError, LabFileError):
        return result
    result.devices = devices
    if twins:
        result.states, result.source = twins, "twin state topics"
    elif devices:
        result.states, result.source = devices, "device status topics"
    return result


async def _login(lab_dir: Path) -> None:
    runtime = read_runtime(lab_dir)
    connection = MqttConnection(f"dtn-probe-{os.getpid()}", runtime.runtime_user,
                                read_password(lab_dir, runtime.runtime_user))
    await open_connection(connection, runtime.broker.host, runtime.broker.port, timeout=2.0)
    connection.disconnect()


def broker_answers(lab_dir: Path) -> bool:
    """Does the lab's broker accept the runtime user's login (not just a TCP connection)?"""
    try:
        asyncio.run(_login(lab_dir))
    except (OSError, MqttError, TimeoutError):
        return False
    return True
