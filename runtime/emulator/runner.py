"""An emulator process: many devices on one event loop, a fault inbox, a status file."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..reconcile import lab_digest
from . import reload as lab_reload
from .control import STATUS_DIR, FaultFolderWatcher, FaultInbox, write_atomic
from .device import DeviceEmulator
from .faults import FaultError
from .signals import DAY_S
from .spec import DeviceProfile, read_password, read_runtime, select_devices, tls_context

log = logging.getLogger(__name__)

CONTROL_POLL_S = 0.2
STATUS_EVERY_S = 1.0
MAX_CONNECTING = 64  # TCP handshakes in flight per process: mosquitto listens with backlog 100
STOP_GRACE_S = 3.0


@dataclass(frozen=True)
class EmulatorOptions:
    """How one emulator process runs.

    Args:
        device_ids: only these devices (default: every twin of the lab).
        shard: (k, n): only devices whose id hashes to k modulo n, 0 <= k < n.
        tls: connect to the broker's TLS listener, verified with the lab CA.
        day_s: length of the daily cycle in seconds.
        name: the process's name in run/emulator/<name>.json.
    """

    device_ids: tuple[str, ...] = ()
    shard: tuple[int, int] | None = None
    tls: bool = False
    day_s: float = DAY_S
    name: str = ""

    @property
    def process_name(self) -> str:
        if self.name:
            return self.name
        return f"emulator-{self.shard[0]}-of-{self.shard[1]}" if self.shard else "emulator"


class EmulatorProcess:
    """Owns the devices of one process and everything they share."""

    def __init__(self, lab_dir: Path, options: EmulatorOptions) -> None:
        self.lab_dir = lab_dir
        self.options = options
        runtime = read_runtime(lab_dir)  # not kept: its topology is megabytes on a big lab
        self.broker = runtime.broker
        self.telemetry_qos = runtime.telemetry_qos
        self.profiles = select_devices(lab_dir, runtime, list(options.device_ids), options.shard)
        self.devices: dict[str, DeviceEmulator] = {}
        self.inbox = FaultInbox(self._apply_fault, {p.id for p in self.profiles})
        self.status_path = lab_dir / STATUS_DIR / f"{options.process_name}.json"
        self.started = time.time()
        self.connected_in_s: float | None = None
        # what a reload needs to start devices like run() did
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.gate: asyncio.Semaphore | None = None
        self.tls: ssl.SSLContext | None = None
        self.lab_sha256 = lab_digest(lab_dir)
        self._reloading = asyncio.Lock()

    def _apply_fault(self, device_id: str, kind: str, args: dict[str, Any],
                     request_id: str) -> str:
        try:
            self.devices[device_id].inject(kind, args, request_id)
        except FaultError as exc:
            log.warning("%s: fault %s not applied: %s", device_id, kind, exc)
            return f"error: {exc}"
        return "applied"

    def new_device(self, profile: DeviceProfile) -> DeviceEmulator:
        """A device of this process, set up like every other (at start and on reload)."""
        assert self.gate is not None
        password = read_password(self.lab_dir, profile.mqtt_user)
        device = DeviceEmulator(profile, password, self.broker, self.gate, self.tls,
                                day_s=self.options.day_s, telemetry_qos=self.telemetry_qos)
        self.devices[profile.id] = device
        return device

    def status(self) -> dict[str, Any]:
        devices = self.devices.values()
        outboxes = [d.outbox for d in devices]
        return {
            "name": self.options.process_name, "pid": os.getpid(), "started": self.started,
            "ts": time.time(), "devices": len(self.devices),
            "connected": sum(d.connected for d in devices),
            "published": sum(d.published for d in devices),
            # telemetry made per device; with the outbox counters below a test can tell that
            # every message the broker acknowledged was stored
            "published_by_device": {d.profile.id: d.published for d in devices},
            "telemetry_qos": self.telemetry_qos,
            "outbox": {"unacked": sum(len(o) for o in outboxes),
                       "acked": sum(o.acked for o in outboxes),
                       "held": sum(o.held for o in outboxes),
                       "resent": sum(o.resent for o in outboxes),
                       "dropped": sum(o.dropped for o in outboxes)},
            "connected_in_s": self.connected_in_s,
            "active_faults": {d.profile.id: d.fault_kind for d in devices if d.fault_kind},
            "faults": self.inbox.results, "lab_sha256": self.lab_sha256,
        }

    def write_status(self) -> None:
        write_atomic(self.status_path, json.dumps(self.status(), sort_keys=True))

    async def run(self, stop: asyncio.Event) -> None:
        """Run every device until `stop` is set, then leave the broker cleanly."""
        ca_file = self.lab_dir / self.broker.ca_file if self.broker.ca_file else None
        tls = tls_context(ca_file) if self.options.tls else None
        gate = asyncio.Semaphore(MAX_CONNECTING)
        self.tls, self.gate = tls, gate
        broker = self.broker
        for profile in self.profiles:
            self.new_device(profile)
        log.info("%s: %d devices, broker %s:%s%s", self.options.process_name, len(self.devices),
                 broker.host, broker.tls_port if tls else broker.port, " (TLS)" if tls else "")
        self.tasks = {d.profile.id: asyncio.create_task(d.run(), name=d.profile.id)
                      for d in self.devices.values()}
        control = asyncio.create_task(self._control_loop(FaultFolderWatcher(self.lab_dir,
                                                                            self.inbox), stop))
        try:
            await stop.wait()
        finally:
            tasks = list(self.tasks.values())  # with those reloads started
            for device in self.devices.values():
                device.stop()
            if tasks:
                await asyncio.wait(tasks, timeout=STOP_GRACE_S)
            for task in [*tasks, control]:
                task.cancel()
            await asyncio.gather(*tasks, control, return_exceptions=True)
            self.write_status()

    async def reload(self) -> None:
        """SIGHUP: bring this process's devices in step with the lab folder (reload.py)."""
        async with self._reloading:
            digest = lab_digest(self.lab_dir)
            if await lab_reload.reload(self) is not None:
                self.lab_sha256 = digest
                self.write_status()

    async def _control_loop(self, watcher: FaultFolderWatcher, stop: asyncio.Event) -> None:
        """Apply fault requests; write the status file every second and log what changed."""
        next_status, all_connected = 0.0, False
        name, total = self.options.process_name, len(self.devices)
        while not stop.is_set():
            total = len(self.devices)  # a reload adds or removes some
            applied = watcher.poll()
            now = time.monotonic()
            if applied or now >= next_status or not all_connected:  # connecting: finer
                status = self.status()
                if (status["connected"] == total) != all_connected:
                    all_connected = not all_connected
                    if all_connected and self.connected_in_s is None:
                        self.connected_in_s = status["connected_in_s"] = round(
                            time.time() - self.started, 3)
                        log.info("%s: all %d devices connected in %.2fs", name, total,
                                 self.connected_in_s)
                    else:
                        log.info("%s: %d of %d devices connected", name, status["connected"],
                                 total)
                write_atomic(self.status_path, json.dumps(status, sort_keys=True))
                next_status = now + STATUS_EVERY_S
            await asyncio.sleep(CONTROL_POLL_S)


def run(lab_dir: Path, options: EmulatorOptions) -> int:
    """Run the emulators until SIGTERM or SIGINT; return the exit code."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        process = EmulatorProcess(lab_dir, options)
        reloads: set[asyncio.Task[None]] = set()

        def on_reload() -> None:
            task = loop.create_task(process.reload(), name="reload")
            reloads.add(task)  # the loop keeps only a weak reference
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_reload)
        if not process.profiles:
            log.warning("%s: no devices to emulate", options.process_name)
        await process.run(stop)

    asyncio.run(main())
    return 0
