"""Device emulators against the real Mosquitto: telemetry, birth and will, commands, faults."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from dtnlab.runtime.emulator.control import applied_faults, request_fault
from dtnlab.runtime.labfiles import LabFiles
from tests.runtime.emulator.smalllab import AGV, GATEWAY, MOTOR, PLC, SENSOR, Watcher
from tests.waiting import wait_for

pytestmark = pytest.mark.mosquitto
Start = Callable[..., subprocess.Popen[bytes]]


def topics(lab: LabFiles, device: str) -> Any:
    return lab.twins[device].topics


def online(message: dict[str, Any]) -> bool:
    return message.get("state") == "online"


def offline(message: dict[str, Any]) -> bool:
    return message.get("state") == "offline"


def telemetry_after(watcher: Watcher, lab: LabFiles, device: str, since: float,
                    count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    topic = topics(lab, device).telemetry
    return wait_for(lambda: (lambda m: m if len(m) >= count else None)(
        watcher.on(topic, since)[:count]), timeout, f"{count} telemetry messages of {device}")


def inject(lab: LabFiles, device: str, kind: str, **args: Any) -> tuple[float, float]:
    """Request a fault through the file channel; return (requested, confirmed) times."""
    requested = time.monotonic()
    request = request_fault(lab.root, device, kind, args)
    wait_for(lambda: applied_faults(lab.root).get(device, {}).get("id") == request["id"],
             what=f"the emulator to apply {kind}")
    return requested, time.monotonic()


def test_telemetry_is_valid_and_at_its_period_after_a_retained_birth(
        lab: LabFiles, watcher: Watcher, emulator: Start) -> None:
    devices = (SENSOR, PLC, MOTOR, GATEWAY, AGV)
    emulator(*devices)
    for device in devices:
        watcher.wait(topics(lab, device).status, online, what=f"the birth of {device}")
    since = time.monotonic()
    time.sleep(2.0)
    for device in devices:
        twin = lab.twins[device]
        messages = watcher.on(twin.topics.telemetry, since)
        expected = 2.0 / twin.period_s
        assert 0.7 * expected <= len(messages) <= 1.3 * expected, (device, len(messages))
        seqs = [m["seq"] for m in messages]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"{device}: gaps in {seqs}"
        for message in messages:
            jsonschema.validate(message, twin.telemetry_schema)
            assert abs(message["ts"] - time.time()) < 3.0
        for name, spec in twin.metrics.items():
            values = [m["values"][name] for m in messages]
            assert {type(v) for v in values} == {
                {"float": float, "int": int, "bool": bool, "str": str}[spec.type]}, name
            band = spec.normal or spec.warning
            if band and device != AGV:  # the AGV's battery and speed follow its drive
                inside = sum(band[0] <= v <= band[1] for v in values)
                assert inside >= 0.8 * len(values), f"{device}.{name}: {values}"
    # retained: a newcomer sees the birth without waiting for anything new
    late = Watcher(lab, [topics(lab, SENSOR).status])
    try:
        late.wait(topics(lab, SENSOR).status, online, what="the retained birth")
    finally:
        late.close()


def test_the_agv_reports_its_position_and_drives_between_its_cells(
        lab: LabFiles, watcher: Watcher, emulator: Start) -> None:
    emulator(AGV)
    twin = lab.twins[AGV]
    assert len(twin.cells) >= 2
    messages = telemetry_after(watcher, lab, AGV, 0.0, 20, timeout=10.0)
    xs = [m["values"]["x"] for m in messages]
    ys = [m["values"]["y"] for m in messages]
    assert len(set(zip(xs, ys, strict=True))) > 3, "the AGV never moved"
    for name in ("x", "y"):
        spec = twin.metrics[name]
        assert all(spec.min <= m["values"][name] <= spec.max for m in messages)
    assert any(m["values"]["speed"] > 0 for m in messages)
    assert any(m["values"]["speed"] == 0 for m in messages), "it never stopped at a cell"


def test_last_will_when_killed_and_a_clean_offline_when_stopped(
        lab: LabFiles, watcher: Watcher, emulator: Start) -> None:
    status = topics(lab, SENSOR).status
    proc = emulator(SENSOR)
    watcher.wait(status, online, what="the birth")
    killed = time.monotonic()
    proc.kill()  # no DISCONNECT: the broker publishes the will
    watcher.wait(status, offline, since=killed, timeout=3.0, what="the last will")
    restarted = time.monotonic()
    proc = emulator(SENSOR)
    watcher.wait(status, online, since=restarted, what="a new birth")
    stopped = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    watcher.wait(status, offline, since=stopped, timeout=3.0, what="the clean offline")


def test_commands_are_acknowledged_and_unknown_ones_rejected(
        lab: LabFiles, watcher: Watcher, emulator: Start) -> None:
    emulator(PLC, MOTOR)
    for device in (PLC, MOTOR):
        watcher.wait(topics(lab, device).status, online, what=f"the birth of {device}")

    def command(device: str, name: str, **args: Any) -> dict[str, Any]:
        command_id = f"{name}-{time.monotonic_ns()}"
        watcher.publish(topics(lab, device).command,
                        {"id": command_id, "command": name, "args": args, "ts": time.time()})
        return watcher.wait(topics(lab, device).status, lambda m: m.get("ack") == command_id,
                            what=f"the ack of {name}")

    assert command(PLC, "ping")["result"] == "ok"
    rejected = command(PLC, "self-destruct")
    assert rejected["result"] == "rejected"
    assert "unknown command" in rejected["detail"]
    assert command(MOTOR, "setpoint", metric="speed", value=99999)["result"] == "rejected"
    assert command(MOTOR, "setpoint", metric="speed", value=1500)["result"] == "ok"
    stopped = time.monotonic()
    assert command(PLC, "stop")["result"] == "ok"
    after = telemetry_after(watcher, lab, PLC, stopped + 0.3, 3)
    assert all(m["values"]["running"] is False for m in after)
    # acks are not retained: a newcomer still finds the birth on the status topic
    late = Watcher(lab, [topics(lab, PLC).status])
    try:
        assert late.wait(topics(lab, PLC).status, lambda m: True)["state"] == "online"
    finally:
        late.close()


def test_spike_puts_a_few_samples_beyond_warning_then_returns(
        lab: LabFiles, watcher: Watcher, emulator: Start) -> None:
    emulator(SENSOR)
    telemetry_after(watcher, lab, SENSOR, 0.0, 2)
    since, _ = inject(lab, SENSOR, "spike")
    values = [m["values"]["temperature"] for m in telemetry_after(watcher, lab, SENSOR, since, 6)]
    spec = lab.twins[SENSOR].metrics["temperature"]
    assert spec.warning is not None
    assert spec.max is not None
    spiked = [v for v in values if v > spec.warning[1]]
    assert len(spiked) == 3, values
    assert all(v <= spec.max for v in spiked), "a spike is critical, not an invalid reading"
    assert spec.warning[0] <= values[-1] <= spec.warning[1], "it did not come back"


def test_stuck_repeats_the_last_reading_until_recover(
        lab: LabFiles, watcher: Watcher, emulator: Start) -> None:
    emulator(PLC)
    telemetry_after(watcher, lab, PLC, 0.0, 2)
    _, applied = inject(lab, PLC, "stuck")
    stuck = telemetry_after(watcher, lab, PLC, applied, 5)
    assert len({tuple(sorted(m["values"].items())) for m in stuck}) == 1, stuck
    assert [m["seq"] for m in stuck] == list(range(stuck[0]["seq"], stuck[0]["seq"] + 5))
    _, applied = inject(lab, PLC, "recover")
    moving = telemetry_after(watcher, lab, PLC, applied, 4)
    assert len({m["values"]["cpu_load"] for m in moving}) > 1


def test_drift_walks_out_of_normal_and_then_out_of_warning(
        lab: LabFiles, watcher: Watcher, emulator: Start) -> None:
    emulator(SENSOR)
    telemetry_after(watcher, lab, SENSOR, 0.0, 2)
    since, _ = inject(lab, SENSOR, "drift", ramp_s=1.0)
    spec = lab.twins[SENSOR].metrics["temperature"]
    assert spec.normal is not None
    assert spec.warning is not None
    topic = topics(lab, SENSOR).telemetry
    watcher.wait(topic, lambda m: m["values"]["temperature"] > spec.normal[1], since,
                 what="a reading above normal")
    watcher.wait(topic, lambda m: m["values"]["temperature"] > spec.warning[1], since,
                 what="a reading above warning")


def test_dropout_stops_telemetry_but_keeps_the_connection(
        lab: LabFiles, watcher: Watcher, emulator: Start) -> None:
    emulator(SENSOR)
    telemetry_after(watcher, lab, SENSOR, 0.0, 2)
    requested, applied = inject(lab, SENSOR, "dropout")
    time.sleep(1.5)
    assert watcher.on(topics(lab, SENSOR).telemetry, applied) == []
    assert not [m for m in watcher.on(topics(lab, SENSOR).status, requested) if offline(m)]
    _, applied = inject(lab, SENSOR, "recover")
    telemetry_after(watcher, lab, SENSOR, applied, 3)


def test_offline_drops_the_connection_so_the_will_fires_until_recover(
        lab: LabFiles, watcher: Watcher, emulator: Start) -> None:
    status = topics(lab, SENSOR).status
    emulator(SENSOR)
    telemetry_after(watcher, lab, SENSOR, 0.0, 2)
    requested, applied = inject(lab, SENSOR, "offline")
    watcher.wait(status, offline, requested, timeout=3.0, what="the will")
    time.sleep(1.0)
    assert watcher.on(topics(lab, SENSOR).telemetry, applied) == []
    requested, _ = inject(lab, SENSOR, "recover")
    watcher.wait(status, online, requested, what="a new birth")
    telemetry_after(watcher, lab, SENSOR, requested, 3)


def test_faults_over_mqtt_are_commands_and_offline_needs_a_duration(
        lab: LabFiles, watcher: Watcher, emulator: Start) -> None:
    status = topics(lab, SENSOR).status
    emulator(SENSOR)
    watcher.wait(status, online, what="the birth")

    def fault(command_id: str, **args: Any) -> dict[str, Any]:
        watcher.publish(topics(lab, SENSOR).command,
                        {"id": command_id, "command": "fault", "args": args, "ts": time.time()})
        return watcher.wait(status, lambda m: m.get("ack") == command_id, what="the ack")

    assert fault("f1", fault="offline")["result"] == "rejected"
    assert fault("f2", fault="melt")["result"] == "rejected"
    since = time.monotonic()
    assert fault("f3", fault="offline", duration_s=1.0)["result"] == "ok"
    watcher.wait(status, offline, since, what="the will")
    watcher.wait(status, online, since, timeout=5.0, what="the device back by itself")
