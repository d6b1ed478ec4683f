"""Apply a reconcile plan to a running emulator process: devices start, stop, move, reconfigure.

A device whose place changed (new UNS path, so new topics and ACL entries) leaves the broker
cleanly and comes back as a new connection; one whose profile changed otherwise keeps its
connection and only takes the new period, metrics and cells. Unchanged devices are not touched:
same connection, same sequence numbers. A threshold change alone keeps a metric's signal (a real
sensor does not read NetBox), so the twin sees the same values judged by the new thresholds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING

from ..labfiles import LabFileError
from ..reconcile import ReconcilePlan, plan_changes
from .device import DeviceEmulator
from .mobility import AgvMotion
from .signals import make_signal
from .spec import DeviceProfile, read_runtime, select_devices

if TYPE_CHECKING:
    from .runner import EmulatorProcess

log = logging.getLogger(__name__)

STOP_WAIT_S = 3.0
PLACEMENT = ("uns_path", "mqtt_user", "telemetry", "command", "status")
SIGNAL_FIELDS = ("type", "unit", "min", "max")  # what shapes a generated signal


def _placement(p: DeviceProfile) -> tuple[object, ...]:
    return tuple(getattr(p, f) for f in PLACEMENT)


def _behaviour(p: DeviceProfile) -> tuple[object, ...]:
    return tuple(getattr(p, f.name) for f in dataclasses.fields(p) if f.name not in PLACEMENT)


def _differing(a: DeviceProfile, b: DeviceProfile) -> list[str]:
    return sorted(f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name))


def plan_profiles(loaded: dict[str, DeviceProfile],
                  current: dict[str, DeviceProfile]) -> ReconcilePlan:
    """The plan for one process's devices."""
    return plan_changes(loaded, current, _placement, _behaviour, _differing)


def current_profiles(process: EmulatorProcess) -> dict[str, DeviceProfile]:
    """This process's devices as the lab folder describes them now."""
    runtime = read_runtime(process.lab_dir)
    wanted = [i for i in process.options.device_ids if i in set(runtime.twins)]
    if process.options.device_ids and not wanted:
        return {}  # every device it was started for has left the lab
    profiles = select_devices(process.lab_dir, runtime, wanted, process.options.shard)
    process.broker = runtime.broker
    process.telemetry_qos = runtime.telemetry_qos
    for device in process.devices.values():
        device.telemetry_qos = runtime.telemetry_qos
    return {p.id: p for p in profiles}


def update_profile(device: DeviceEmulator, profile: DeviceProfile, day_s: float) -> None:
    """New period, metrics or cells for a device that stays connected."""
    old = device.profile
    for name, spec in profile.metrics.items():
        before = old.metrics.get(name)
        if before is None or any(getattr(before, f) != getattr(spec, f) for f in SIGNAL_FIELDS):
            device.signals[name] = make_signal(spec, device.rng, day_s)
    for name in set(device.signals) - set(profile.metrics):
        del device.signals[name]
    if profile.mobile and (not old.mobile or old.cells != profile.cells
                           or old.period_s != profile.period_s):
        device.motion = AgvMotion(profile.cells, profile.metrics, profile.period_s, device.rng)
    elif not profile.mobile:
        device.motion = None
    device.profile = profile
    device.period_s = profile.period_s  # the next tick is scheduled with it


async def _stop(process: EmulatorProcess, device_id: str) -> None:
    device = process.devices.pop(device_id)
    device.stop()
    task = process.tasks.pop(device_id, None)
    if task is not None:
        done, _ = await asyncio.wait([task], timeout=STOP_WAIT_S)
        if not done:
            task.cancel()


def _start(process: EmulatorProcess, profile: DeviceProfile) -> None:
    device = process.new_device(profile)
    process.tasks[profile.id] = asyncio.create_task(device.run(), name=profile.id)


async def reload(process: EmulatorProcess) -> ReconcilePlan | None:
    """Bring the process's devices in step with the lab folder; None when it cannot be read."""
    if process.gate is None:
        return None  # not running yet: it starts from the lab folder as it is by then
    try:
        current = current_profiles(process)
    except LabFileError as exc:
        log.error("%s: reload skipped, the lab folder is not readable: %s",
                  process.options.process_name, exc)
        return None
    loaded = {p.id: p for p in process.profiles}
    plan = plan_profiles(loaded, current)
    for device_id in (*plan.removed, *plan.moved):
        await _stop(process, device_id)
    for device_id in plan.reconfigured:
        if device_id not in plan.moved:
            update_profile(process.devices[device_id], current[device_id],
                           process.options.day_s)
    for device_id in (*plan.added, *plan.moved):
        _start(process, current[device_id])
    process.profiles = list(current.values())
    process.inbox.owned = set(current)
    log.info("%s: reloaded: %d added, %d removed, %d moved, %d reconfigured, %d unchanged",
             process.options.process_name, len(plan.added), len(plan.removed),
             len(plan.moved), len(plan.reconfigured), len(plan.unchanged))
    return plan
