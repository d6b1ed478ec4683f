"""Emulator pieces without a broker: signals, faults, the AGV, MQTT framing, shards, the inbox."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from dtnlab.runtime.emulator.control import FaultInbox
from dtnlab.runtime.emulator.faults import FaultError, drift_value, make_fault, spike_value
from dtnlab.runtime.emulator.mobility import AgvMotion, cell_positions
from dtnlab.runtime.emulator.mqtt import (
    DUP,
    PUBLISH,
    MqttConnection,
    Outbox,
    Will,
    connect_packet,
    publish_packet,
)
from dtnlab.runtime.emulator.signals import make_signal
from dtnlab.runtime.emulator.spec import in_shard, parse_shard
from dtnlab.runtime.labfiles import MetricSpec

TEMPERATURE = MetricSpec(type="float", unit="degC", min=-50, max=150, normal=(15, 30),
                         warning=(10, 35))
BATTERY = MetricSpec(type="float", min=0, max=100, normal=(30, 100), warning=(15, 100))
COUNT = MetricSpec(type="int", min=0, max=100000, normal=(0, 20000), warning=(0, 50000))


@pytest.mark.parametrize("spec", [TEMPERATURE, BATTERY, COUNT], ids=["float", "upper-edge",
                                                                      "int"])
def test_numeric_signals_stay_mostly_inside_normal_over_a_day(spec: MetricSpec) -> None:
    signal = make_signal(spec, random.Random(1), day_s=600.0)
    values = [signal.sample(t * 5.0, 5.0) for t in range(2000)]  # 10,000 s: 16 daily cycles
    assert spec.normal is not None
    inside = sum(spec.normal[0] <= v <= spec.normal[1] for v in values)
    assert inside >= 0.97 * len(values)
    assert len(set(values)) > 1000, "noise: values should rarely repeat"
    assert all(isinstance(v, int if spec.type == "int" else float) for v in values)


def test_bool_and_str_signals_are_mostly_running() -> None:
    rng = random.Random(2)
    flag = make_signal(MetricSpec(type="bool"), rng)
    state = make_signal(MetricSpec(type="str"), rng)
    flags = [flag.sample(t, 1.0) for t in range(5000)]
    states = [state.sample(t, 1.0) for t in range(5000)]
    assert 0.9 < sum(flags) / len(flags) < 1.0
    assert set(states) == {"running", "idle"}
    assert states.count("running") > 0.8 * len(states)


def test_spike_is_critical_but_plausible_and_drift_leaves_warning_in_two_ramps() -> None:
    assert TEMPERATURE.warning is not None
    assert TEMPERATURE.max is not None
    assert TEMPERATURE.warning[1] < spike_value(TEMPERATURE) <= TEMPERATURE.max
    # the warning band reaches the maximum: the spike goes down instead
    assert BATTERY.warning is not None
    assert 0 <= spike_value(BATTERY) < BATTERY.warning[0]
    assert drift_value(TEMPERATURE, 22.5, 0.0, 10.0) == 22.5
    assert drift_value(TEMPERATURE, 22.5, 10.0, 10.0) == pytest.approx(35.0)
    assert drift_value(TEMPERATURE, 22.5, 20.0, 10.0) > TEMPERATURE.warning[1]
    assert drift_value(TEMPERATURE, 22.5, 1e6, 10.0) == TEMPERATURE.max


def test_faults_are_checked_against_the_device() -> None:
    metrics = {"running": MetricSpec(type="bool"), "temperature": TEMPERATURE}
    assert make_fault("spike", metrics, 1.0).metric == "temperature"
    assert make_fault("drift", metrics, 2.0).ramp_s == 20.0
    with pytest.raises(FaultError, match="unknown fault"):
        make_fault("melt", metrics, 1.0)
    with pytest.raises(FaultError, match="no numeric metric 'running'"):
        make_fault("spike", metrics, 1.0, {"metric": "running"})
    with pytest.raises(FaultError, match="no numeric metric"):
        make_fault("drift", {"running": MetricSpec(type="bool")}, 1.0)
    fault = make_fault("dropout", metrics, 1.0, {"duration_s": 5})
    assert not fault.expired(fault.started + 4.9)
    assert fault.expired(fault.started + 5.0)


def test_the_agv_dwells_then_drives_to_another_cell_at_cruise_speed() -> None:
    cells = ("l3/c1", "l3/c2", "l3/c3")
    metrics = {"x": MetricSpec(min=0, max=200), "y": MetricSpec(min=0, max=100),
               "speed": MetricSpec(min=0, max=2, normal=(0, 1.5), warning=(0, 1.8))}
    positions = cell_positions(cells, metrics["x"], metrics["y"])
    assert len(set(positions.values())) == 3
    motion = AgvMotion(cells, metrics, 1.0, random.Random(3))
    visited, speeds = [], []
    for _ in range(600):
        motion.step(1.0)
        speeds.append(motion.speed)
        if motion.cell is not None and (not visited or visited[-1] != motion.cell):
            visited.append(motion.cell)
        assert 0 <= motion.x <= 200
        assert 0 <= motion.y <= 100
    assert len(visited) > 5
    assert set(visited) == set(cells)
    assert max(speeds) <= 1.5
    assert 0.0 in speeds


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()

    def write(self, data: Any) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return False


def test_mqtt_framing_survives_packets_split_and_joined_anyhow() -> None:
    async def scenario() -> list[tuple[str, bytes]]:
        received: list[tuple[str, bytes]] = []
        conn = MqttConnection("dev", "dev", "pw", on_message=lambda t, p: received.append((t, p)))
        transport = FakeTransport()
        conn.connection_made(transport)
        assert transport.written.startswith(b"\x10")  # CONNECT first
        big = b"x" * 300  # a two-byte remaining length
        stream = (b"\x20\x02\x00\x00" + publish_packet("a/b", b"{}", 0, False, 0)
                  + publish_packet("c", big, 1, False, 7))
        for i in range(0, len(stream), 3):  # three bytes at a time
            conn.data_received(stream[i:i + 3])
        assert conn.connack.result() is False
        assert transport.written.endswith(b"\x40\x02\x00\x07")  # PUBACK for packet 7
        return received

    assert asyncio.run(scenario()) == [("a/b", b"{}"), ("c", b"x" * 300)]


def test_the_outbox_keeps_qos1_messages_until_acked_and_resends_them_after_a_reconnect() -> None:
    def connected(outbox: Outbox) -> tuple[MqttConnection, FakeTransport]:
        conn = MqttConnection("dev", "dev", "pw", outbox=outbox)
        transport = FakeTransport()
        conn.connection_made(transport)
        conn.data_received(b"\x20\x02\x00\x00")  # CONNACK, no session kept
        transport.written.clear()
        return conn, transport

    def sent(payload: bytes, packet_id: int, dup: bool = False) -> bytes:
        packet = publish_packet("t", payload, 1, False, packet_id)
        return bytes((packet[0] | (DUP if dup else 0),)) + packet[1:]

    async def scenario() -> None:
        outbox = Outbox(limit=3)
        outbox.publish(None, "t", b"0")  # made before any connection: kept
        conn, transport = connected(outbox)
        outbox.resume(conn)
        outbox.publish(conn, "t", b"1")
        assert bytes(transport.written) == sent(b"0", 1) + sent(b"1", 2)
        conn.data_received(b"\x40\x02\x00\x01")  # PUBACK of the first
        assert (outbox.acked, list(outbox.inflight)) == (1, [2])
        conn.connection_lost(None)  # the broker went away before acknowledging "1"
        for payload in (b"2", b"3", b"4"):  # room for 3: "2", the oldest waiting, is dropped
            outbox.publish(conn, "t", payload)
        assert (len(outbox), outbox.dropped, outbox.held) == (3, 1, 4)
        again, transport = connected(outbox)
        outbox.resume(again)
        assert bytes(transport.written) == sent(b"1", 2, dup=True) + sent(b"3", 3) + sent(b"4", 4)
        again.data_received(b"\x40\x02\x00\x02\x40\x02\x00\x03\x40\x02\x00\x04")
        assert (len(outbox), outbox.acked, outbox.resent) == (0, 4, 1)

    asyncio.run(scenario())


def test_connect_packet_carries_the_will_and_credentials() -> None:
    packet = connect_packet("dev-1", "dev-1", "secret", 30, Will("s/t", b"off"), False)
    assert packet[0] == 0x10
    flags = packet[2 + 2 + 4 + 1]  # fixed header, protocol name, level
    assert flags == 0x80 | 0x40 | 0x20 | 0x08 | 0x04  # user, password, retain, QoS 1, will
    assert b"s/t" in packet
    assert b"off" in packet
    assert b"secret" in packet
    assert publish_packet("t", b"p", 1, True, 1)[0] == (PUBLISH << 4) | 0x02 | 0x01


def test_shards_partition_the_devices_stably() -> None:
    ids = [f"dev-{i}" for i in range(1000)]
    shards = [[i for i in ids if in_shard(i, (k, 3))] for k in range(3)]
    assert sorted(sum(shards, [])) == sorted(ids)
    assert all(250 < len(s) < 420 for s in shards)
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "x/2", "1"):
        with pytest.raises(ValueError, match="expected K/N"):
            parse_shard(bad)


def test_the_inbox_applies_each_request_once_and_skips_stale_spikes() -> None:
    applied: list[tuple[str, str]] = []

    def apply(device: str, kind: str, args: dict[str, Any], request_id: str) -> str:
        applied.append((device, kind))
        return "applied"

    inbox = FaultInbox(apply, {"a"})
    now = time.time()
    assert inbox.offer("a", {"id": "1", "fault": "stuck", "ts": now})
    assert not inbox.offer("a", {"id": "1", "fault": "stuck", "ts": now})
    assert not inbox.offer("b", {"id": "2", "fault": "stuck", "ts": now})  # not ours
    fresh = FaultInbox(apply, {"a"})
    fresh.offer("a", {"id": "3", "fault": "spike", "ts": now - 3600})
    assert applied == [("a", "stuck")]
    assert fresh.results["a"]["result"] == "skipped: stale spike"
