"""An emulator process: many devices on one event loop, a fault inbox, a status file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .control import (
    STATUS_DIR,
    FaultFolderWatcher,
    FaultInbox,
    fault_topic,
    write_atomic,
)
from .device import DeviceEmulator
from .faults import FaultError
from .mqtt import MqttConnection, MqttError, open_connection
from .signals import DAY_S
from .spec import BrokerSpec, DeviceSpec, broker_spec, load_devices, read_password

log = logging.getLogger(__name__)

CONTROL_POLL_S = 0.2
STATUS_EVERY_S = 1.0
MAX_CONNECTING = 200  # concurrent connection attempts per process: bounds the broker's backlog
STOP_GRACE_S = 3.0


@dataclass(frozen=True)
class EmulatorOptions:
    """How one emulator process runs.

    Args:
        device_ids: only these devices (default: every twin of the lab).
        shard: (k, n): only devices whose id hashes to k modulo n, 0 <= k < n.
        tls: connect to the broker's TLS listener with the lab CA.
        control_user: also take fault requests over MQTT with this identity.
        name: the process's name in run/emulator/<name>.json.
    """

    device_ids: tuple[str, ...] = ()
    shard: tuple[int, int] | None = None
    tls: bool = False
    control_user: str | None = None
    day_s: float = DAY_S
    name: str = ""

    @property
    def process_name(self) -> str:
        if self.name:
            return self.name
        return f"emulator-{self.shard[0]}-of-{self.shard[1]}" if self.shard else "emulator"


def in_shard(device_id: str, shard: tuple[int, int] | None) -> bool:
    """Stable across regenerations: adding a device never moves the others."""
    return shard is None or zlib.crc32(device_id.encode()) % shard[1] == shard[0]


def parse_shard(text: str) -> tuple[int, int]:
    k, _, n = text.partition("/")
    shard = (int(k), int(n))
    if not 0 <= shard[0] < shard[1]:
        raise ValueError(f"shard {text!r}: expected K/N with 0 <= K < N")
    return shard


class EmulatorProcess:
    """Owns the devices of one process and everything they share."""

    def __init__(self, lab_dir: Path, options: EmulatorOptions) -> None:
        self.lab_dir = lab_dir
        self.options = options
        self.broker: BrokerSpec = broker_spec(lab_dir)
        specs = [s for s in load_devices(lab_dir, list(options.device_ids))
                 if in_shard(s.id, options.shard)]
        self.specs: list[DeviceSpec] = specs
        self.devices: dict[str, DeviceEmulator] = {}
        self.inbox = FaultInbox(self._apply_fault, {s.id for s in specs})
        self.status_path = lab_dir / STATUS_DIR / f"{options.process_name}.json"
        self.started = time.time()
        self.connected_in_s: float | None = None

    def _apply_fault(self, device_id: str, kind: str, args: dict[str, Any],
                     request_id: str) -> str:
        try:
            self.devices[device_id].inject(kind, args, request_id)
        except FaultError as exc:
            log.warning("%s: fault %s not applied: %s", device_id, kind, exc)
            return f"error: {exc}"
        return "applied"

    def status(self) -> dict[str, Any]:
        devices = self.devices.values()
        return {
            "name": self.options.process_name, "pid": os.getpid(), "started": self.started,
            "ts": time.time(), "devices": len(self.devices),
            "connected": sum(d.connected for d in devices),
            "published": sum(d.published for d in devices),
            "connected_in_s": self.connected_in_s,
            "active_faults": {d.spec.id: d.fault_kind for d in devices if d.fault_kind},
            "faults": self.inbox.results,
        }

    def write_status(self) -> None:
        write_atomic(self.status_path, json.dumps(self.status(), sort_keys=True))

    async def run(self, stop: asyncio.Event) -> None:
        tls = self.broker.tls_context() if self.options.tls else None
        gate = asyncio.Semaphore(MAX_CONNECTING)
        for spec in self.specs:
            password = read_password(self.lab_dir, spec.mqtt_user)
            self.devices[spec.id] = DeviceEmulator(spec, password, self.broker, gate, tls,
                                                   day_s=self.options.day_s)
        log.info("%s: %d devices, broker %s:%s", self.options.process_name, len(self.devices),
                 self.broker.host, self.broker.tls_port if tls else self.broker.port)
        tasks = [asyncio.create_task(d.run(), name=d.spec.id) for d in self.devices.values()]
        watcher = FaultFolderWatcher(self.lab_dir, self.inbox)
        helpers = [asyncio.create_task(self._control_loop(watcher, stop))]
        if self.options.control_user:
            helpers.append(asyncio.create_task(self._mqtt_control(self.options.control_user)))
        try:
            await stop.wait()
        finally:
            await asyncio.gather(*(d.stop() for d in self.devices.values()))
            closing = [d.connection.closed for d in self.devices.values() if d.connection]
            if closing:
                await asyncio.wait(closing, timeout=STOP_GRACE_S)
            for task in tasks + helpers:
                task.cancel()
            await asyncio.gather(*tasks, *helpers, return_exceptions=True)
            self.write_status()

    async def _control_loop(self, watcher: FaultFolderWatcher, stop: asyncio.Event) -> None:
        next_status = 0.0
        while not stop.is_set():
            applied = watcher.poll()
            now = time.monotonic()
            if self.connected_in_s is None and self.devices and all(
                    d.connected for d in self.devices.values()):
                self.connected_in_s = round(time.time() - self.started, 3)
                log.info("%s: all %d devices connected in %.2fs", self.options.process_name,
                         len(self.devices), self.connected_in_s)
            if applied or now >= next_status:
                self.write_status()
                next_status = now + STATUS_EVERY_S
            await asyncio.sleep(CONTROL_POLL_S)

    async def _mqtt_control(self, user: str) -> None:
        """Fault requests over MQTT, for emulators that share no folder with the CLI."""
        prefix = fault_topic(self.broker.enterprise, "")

        def on_message(topic: str, payload: bytes) -> None:
            with contextlib.suppress(ValueError):
                self.inbox.offer(topic.removeprefix(prefix), json.loads(payload))

        password = read_password(self.lab_dir, user)
        while True:
            connection = MqttConnection(f"{self.options.process_name}-control-{os.getpid()}",
                                        user, password, keepalive=30, on_message=on_message)
            try:
                await open_connection(connection, self.broker.host, self.broker.port)
                await connection.subscribe([(prefix + "+", 1)])
            except (OSError, MqttError, TimeoutError) as exc:
                log.warning("fault control over MQTT unavailable: %s", exc)
                connection.abort()
                await asyncio.sleep(2.0)
                continue
            while not connection.closed.done():
                connection.keep_alive(time.monotonic())
                await asyncio.wait([connection.closed], timeout=5.0)


def run(lab_dir: Path, options: EmulatorOptions) -> int:
    """Run the emulators until SIGTERM or SIGINT; return the exit code."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        process = EmulatorProcess(lab_dir, options)
        if not process.specs:
            log.warning("%s: no devices to emulate", options.process_name)
        await process.run(stop)

    asyncio.run(main())
    return 0
