"""One emulated device: its own MQTT session, telemetry at its period, commands and faults."""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from typing import Any

import orjson

from . import commands
from .faults import Fault, FaultError, drift_value, make_fault, spike_value
from .mobility import AgvMotion
from .mqtt import MqttConnection, MqttError, Will, open_connection
from .signals import DAY_S, Signal, make_signal
from .spec import BrokerSpec, DeviceSpec

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 10.0
REBOOT_S = 1.0


def status_payload(state: str) -> bytes:
    return orjson.dumps({"state": state, "ts": time.time()})


class DeviceEmulator:
    """The physical-entity layer for one device, driven entirely by the event loop.

    Args:
        spec: the device's profile from twins/<id>.json.
        password: its MQTT password (secrets/devices/<user>.password).
        broker: where the lab's broker listens.
        connect_gate: bounds how many connections of the process are being opened at once.
    """

    def __init__(self, spec: DeviceSpec, password: str, broker: BrokerSpec,
                 connect_gate: asyncio.Semaphore, tls: ssl.SSLContext | None = None,
                 rng: random.Random | None = None, day_s: float = DAY_S) -> None:
        self.spec = spec
        self.password = password
        self.broker = broker
        self.tls = tls
        self.gate = connect_gate
        self.rng = rng or random.Random(spec.id)
        self.signals: dict[str, Signal] = {m.name: make_signal(m, self.rng, day_s)
                                            for m in spec.metrics}
        self.motion = (AgvMotion(spec.cells, {m.name: m for m in spec.metrics}, spec.period_s,
                                 self.rng) if spec.mobile else None)
        self.period_s = spec.period_s
        self.seq = 0
        self.published = 0
        self.fault: Fault | None = None
        self.connection: MqttConnection | None = None
        self.last_values: dict[str, Any] = {}
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._last_tick = 0.0
        self._stopping = False
        self._offline = False  # the offline fault holds the device disconnected
        self._rest_until = 0.0  # a reboot keeps the device away for a moment
        self._wake = asyncio.Event()

    # connection lifecycle ---------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.connection is not None and self.connection.is_connected

    async def run(self) -> None:
        """Stay connected until stopped: reconnect with backoff, hold off while offline."""
        self._schedule(self._loop.time() + self.rng.uniform(0, self.period_s))
        backoff = RECONNECT_MIN_S
        while not self._stopping:
            if self._offline:
                self._wake.clear()
                await self._wake.wait()
                continue
            rest = self._rest_until - self._loop.time()
            if rest > 0:
                await asyncio.sleep(rest)
                continue
            try:
                await self._connect()
            except (OSError, MqttError, TimeoutError) as exc:
                log.debug("%s: connect failed: %s", self.spec.id, exc)
                await asyncio.sleep(backoff * self.rng.uniform(0.5, 1.5))
                backoff = min(backoff * 2, RECONNECT_MAX_S)
                continue
            backoff = RECONNECT_MIN_S
            assert self.connection is not None
            if self._offline:  # the offline fault arrived while connecting
                self.connection.abort()
            await self.connection.closed
            self.connection = None
            if not self._stopping and not self._offline:
                log.debug("%s: connection lost", self.spec.id)

    async def _connect(self) -> None:
        topics = self.spec.topics
        connection = MqttConnection(
            client_id=self.spec.id, username=self.spec.mqtt_user, password=self.password,
            keepalive=self.spec.keepalive, clean_session=False, on_message=self._on_message,
            will=Will(topics["status"], status_payload("offline")))
        port = self.broker.tls_port if self.tls and self.broker.tls_port else self.broker.port
        async with self.gate:
            await open_connection(connection, self.broker.host, port, self.tls)
        self.connection = connection
        connection.publish(topics["status"], status_payload("online"), qos=1, retain=True)
        try:
            granted = await connection.subscribe([(topics["command"], 1)])
        except BaseException:
            self.connection = None
            connection.abort()
            raise
        if granted == 0x80:
            log.warning("%s: the broker refused the subscription to %s", self.spec.id,
                        topics["command"])

    async def stop(self) -> None:
        """Leave cleanly: retained offline status, then DISCONNECT (so no will)."""
        self._stopping = True
        self._wake.set()
        if self._timer is not None:
            self._timer.cancel()
        connection = self.connection
        if connection is not None and connection.is_connected:
            connection.publish(self.spec.topics["status"], status_payload("offline"), qos=1,
                               retain=True)
            connection.disconnect()

    def reboot(self) -> None:
        """Go away for a moment and come back with a fresh sequence, like a power cycle."""
        self._rest_until = self._loop.time() + max(REBOOT_S, self.period_s)
        self.seq = 0
        self._loop.call_soon(self._leave)

    def _leave(self) -> None:
        if self.connection is not None and self.connection.is_connected:
            self.connection.publish(self.spec.topics["status"], status_payload("offline"),
                                    qos=1, retain=True)
            self.connection.disconnect()

    # telemetry ---------------------------------------------------------------------------------
    def _schedule(self, when: float) -> None:
        self._timer = self._loop.call_at(when, self._tick, when)

    def _tick(self, due: float) -> None:
        now = self._loop.time()
        dt = now - self._last_tick if self._last_tick else self.period_s
        self._last_tick = now
        values = self.sample(time.time(), dt)
        connection = self.connection
        if connection is not None and connection.is_connected:
            if not (self.fault and self.fault.kind == "dropout") and not connection.paused:
                self.publish_telemetry(connection, values)
            connection.keep_alive(now)
        following = due + self.period_s
        self._schedule(following if following > now else now + self.period_s)

    def sample(self, now: float, dt: float) -> dict[str, Any]:
        """The next reading of every metric, with the active fault applied."""
        fault = self.fault
        if fault is not None and fault.kind == "stuck" and self.last_values:
            return self.last_values
        values: dict[str, Any] = {}
        for name, signal in self.signals.items():
            values[name] = signal.sample(now, dt)
        if self.motion is not None:
            self.motion.step(dt)
            values.update((k, v) for k, v in self.motion.values().items() if k in values)
        if fault is not None and fault.metric is not None:
            name = fault.metric.name
            if fault.kind == "spike":
                values[name] = spike_value(fault.metric)
                fault.samples_left -= 1
                if fault.samples_left <= 0:
                    log.info("%s: spike over", self.spec.id)
                    self.fault = None
            elif fault.kind == "drift":
                values[name] = drift_value(fault.metric, values[name], now - fault.started,
                                           fault.ramp_s)
        self.last_values = values
        return values

    def publish_telemetry(self, connection: MqttConnection, values: dict[str, Any]) -> None:
        payload = orjson.dumps({"ts": time.time(), "seq": self.seq, "values": values})
        connection.publish(self.spec.topics["telemetry"], payload)
        self.seq += 1
        self.published += 1

    # commands and faults -----------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic != self.spec.topics["command"]:
            return
        command_id = ""
        try:
            message = orjson.loads(payload)
            command_id = str(message.get("id", ""))
            name = str(message["command"])
            args = message.get("args") or {}
            if not isinstance(args, dict):
                raise TypeError("args must be an object")
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            result, detail = "rejected", f"malformed command: {exc}"
        else:
            result, detail = commands.execute(self, name, args)
        log.info("%s: command %s -> %s (%s)", self.spec.id, command_id, result, detail)
        if self.connection is not None:
            ack = {"ack": command_id, "result": result, "detail": detail, "ts": time.time()}
            self.connection.publish(self.spec.topics["status"], orjson.dumps(ack), qos=1)

    def inject(self, kind: str, args: dict[str, Any] | None = None, fault_id: str = "") -> None:
        """Apply a fault now; raises FaultError when it cannot apply to this device."""
        fault = make_fault(kind, self.spec.metrics, self.period_s, args, fault_id)
        log.info("%s: fault %s", self.spec.id, kind)
        was_offline = self._offline
        self.fault = None if kind == "recover" else fault
        self._offline = kind == "offline"
        if self._offline and self.connection is not None:
            self.connection.abort()
        elif was_offline and not self._offline:
            self._wake.set()

    @property
    def fault_kind(self) -> str | None:
        return self.fault.kind if self.fault else None


__all__ = ["DeviceEmulator", "FaultError"]
