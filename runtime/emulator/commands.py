"""Commands a device emulator understands; anything else is acknowledged as rejected."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .faults import FaultError
from .signals import BoolSignal, NumericSignal, StrSignal, clamp

if TYPE_CHECKING:
    from .device import DeviceEmulator

MIN_PERIOD_S = 0.05


class Rejected(Exception):
    """The command is known but cannot be done with these arguments."""


def _ping(device: DeviceEmulator, args: dict[str, Any], command_id: str) -> str:
    return "pong"


def _identify(device: DeviceEmulator, args: dict[str, Any], command_id: str) -> str:
    return f"{device.profile.id} at {device.profile.uns_path}"


def _run_state(running: bool) -> Callable[[DeviceEmulator, dict[str, Any], str], str]:
    def command(device: DeviceEmulator, args: dict[str, Any], command_id: str) -> str:
        for signal in device.signals.values():
            if isinstance(signal, BoolSignal):
                signal.pinned = running
            elif isinstance(signal, StrSignal):
                signal.pinned = "running" if running else "stopped"
        return "running" if running else "stopped"
    return command


def _set_period(device: DeviceEmulator, args: dict[str, Any], command_id: str) -> str:
    try:
        period = float(args["period_s"])
    except (KeyError, TypeError, ValueError):
        raise Rejected("args.period_s must be a number") from None
    if period < MIN_PERIOD_S:
        raise Rejected(f"period_s must be at least {MIN_PERIOD_S}")
    device.period_s = period
    return f"period_s={period}"


def _setpoint(device: DeviceEmulator, args: dict[str, Any], command_id: str) -> str:
    name = args.get("metric")
    signal = device.signals.get(str(name))
    if not isinstance(signal, NumericSignal):
        raise Rejected(f"no numeric metric {name!r}")
    try:
        value = float(args["value"])
    except (KeyError, TypeError, ValueError):
        raise Rejected("args.value must be a number") from None
    metric = signal.metric
    if clamp(metric, value) != value:
        raise Rejected(f"{value} is outside {metric.min}..{metric.max}")
    signal.offset = value - signal.center
    return f"{name}={value}"


def _reboot(device: DeviceEmulator, args: dict[str, Any], command_id: str) -> str:
    device.reboot()
    return "rebooting"


def _fault(device: DeviceEmulator, args: dict[str, Any], command_id: str) -> str:
    """The MQTT fault channel: a node that shares no folder with the CLI takes faults here.

    An offline device cannot hear `recover`, so offline over MQTT must say when it ends.
    """
    kind = str(args.get("fault", ""))
    if kind == "offline" and args.get("duration_s") is None:
        raise Rejected("offline over MQTT needs args.duration_s: the device cannot hear "
                       "recover while it is offline")
    try:
        device.inject(kind, {k: v for k, v in args.items() if k != "fault"}, command_id)
    except FaultError as exc:
        raise Rejected(str(exc)) from None
    return f"fault {kind}"


COMMANDS: dict[str, Callable[[DeviceEmulator, dict[str, Any], str], str]] = {
    "ping": _ping,
    "identify": _identify,
    "start": _run_state(True),
    "stop": _run_state(False),
    "set_period": _set_period,
    "setpoint": _setpoint,
    "reboot": _reboot,
    "fault": _fault,
}


def execute(device: DeviceEmulator, name: str, args: dict[str, Any],
            command_id: str = "") -> tuple[str, str]:
    """Run one command; return (result, detail) with result "ok" or "rejected"."""
    command = COMMANDS.get(name)
    if command is None:
        return "rejected", f"unknown command {name!r}; commands are {', '.join(COMMANDS)}"
    try:
        return "ok", command(device, args, command_id)
    except Rejected as exc:
        return "rejected", str(exc)
