"""One emulated device: its own MQTT session, telemetry at its period, commands and faults."""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from typing import Any

import orjson

from ..labfiles import BrokerConfig
from . import commands
from .faults import Fault, drift_value, make_fault, spike_value
from .mobility import AgvMotion
from .mqtt import MqttConnection, MqttError, Outbox, Will, open_connection
from .signals import DAY_S, Signal, make_signal
from .spec import DeviceProfile

log = logging.getLogger(__name__)

SHARED_RNG = random.Random()  # one generator for the process: each holds 2.5 KB of state
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 5.0
REBOOT_S = 1.0


def status_payload(state: str) -> bytes:
    return orjson.dumps({"state": state, "ts": time.time()})


class DeviceEmulator:
    """The physical-entity layer for one device, driven entirely by the event loop.

    Args:
        profile: the device's profile, from twins/<id>.json.
        password: its MQTT password (secrets/devices/<user>.password).
        broker: where the lab's broker listens.
        connect_gate: bounds how many connections of the process are being opened at once.
        tls: connect to the TLS listener with this context.
        day_s: length of the daily cycle (shorter to watch it in a demo).
        telemetry_qos: 0 sends each reading once, lost while the broker is away; 1 keeps it
            (bounded, see Outbox) until the broker acknowledges it, across reconnects.
    """

    def __init__(self, profile: DeviceProfile, password: str, broker: BrokerConfig,
                 connect_gate: asyncio.Semaphore, tls: ssl.SSLContext | None = None,
                 rng: random.Random | None = None, day_s: float = DAY_S,
                 telemetry_qos: int = 0) -> None:
        self.profile = profile
        self.password = password
        self.host = broker.host
        self.port = broker.tls_port if tls is not None and broker.tls_port else broker.port
        self.tls = tls
        self.gate = connect_gate
        self.rng = rng or SHARED_RNG
        self.signals: dict[str, Signal] = {name: make_signal(m, self.rng, day_s)
                                            for name, m in profile.metrics.items()}
        self.motion = (AgvMotion(profile.cells, profile.metrics, profile.period_s, self.rng)
                       if profile.mobile else None)
        self.period_s = profile.period_s
        self.telemetry_qos = telemetry_qos
        self.outbox = Outbox()  # QoS 1 telemetry and command acks
        self.seq = 0
        self.published = 0  # telemetry messages made (sent, or kept for the broker at QoS 1)
        self.fault: Fault | None = None
        self.connection: MqttConnection | None = None
        self.last_values: dict[str, Any] = {}
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._last_tick = 0.0
        self._stopping = False
        self._offline = False  # the offline fault holds the device disconnected
        self._rest_until = 0.0  # a reboot keeps the device away for a moment
        self._wake: asyncio.Future[None] | None = None  # resolved to end an offline fault

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
                self._wake = self._loop.create_future()
                await self._wake
                continue
            rest = self._rest_until - self._loop.time()
            if rest > 0:
                await asyncio.sleep(rest)
                continue
            try:
                connection = await self._connect()
            except (OSError, MqttError, TimeoutError) as exc:
                # a refused login is worth a line; a broker that is down, for 10,000 devices, not
                refused = isinstance(exc, MqttError) and backoff == RECONNECT_MIN_S
                log.log(logging.WARNING if refused else logging.DEBUG, "%s: connect failed: %s",
                        self.profile.id, exc)
                await asyncio.sleep(backoff * self.rng.uniform(0.5, 1.5))
                backoff = min(backoff * 2, RECONNECT_MAX_S)
                continue
            backoff = RECONNECT_MIN_S
            if self._offline:  # the offline fault arrived while connecting
                connection.abort()
            await connection.closed
            self.connection = None
            if not self._stopping and not self._offline:
                log.debug("%s: connection lost", self.profile.id)

    async def _connect(self) -> MqttConnection:
        connection = MqttConnection(
            client_id=self.profile.id, username=self.profile.mqtt_user, password=self.password,
            keepalive=self.profile.keepalive, clean_session=False, on_message=self._on_message,
            will=Will(self.profile.status, status_payload("offline")), outbox=self.outbox)
        await open_connection(connection, self.host, self.port, self.tls, gate=self.gate)
        self.connection = connection
        connection.publish(self.profile.status, status_payload("online"), qos=1, retain=True)
        self.outbox.resume(connection)  # after the birth: the twin expects data after it
        try:
            granted = await connection.subscribe([(self.profile.command, 1)])
        except BaseException:
            self.connection = None
            connection.abort()
            raise
        if granted == 0x80:
            log.warning("%s: the broker refused the subscription to %s", self.profile.id,
                        self.profile.command)
        return connection

    def _leave(self) -> None:
        """Retained offline status, then DISCONNECT, so the broker discards the will."""
        connection = self.connection
        if connection is not None and connection.is_connected:
            connection.publish(self.profile.status, status_payload("offline"), qos=1, retain=True)
            connection.disconnect()

    def stop(self) -> None:
        """Leave cleanly and stop; `run()` returns once the connection has closed."""
        self._stopping = True
        self._wake_up()
        if self._timer is not None:
            self._timer.cancel()
        self._leave()

    def reboot(self) -> None:
        """Go away for a moment and come back with a fresh sequence, like a power cycle."""
        self._rest_until = self._loop.time() + max(REBOOT_S, self.period_s)
        self.seq = 0
        self._loop.call_soon(self._leave)

    # telemetry ---------------------------------------------------------------------------------
    def _schedule(self, when: float) -> None:
        self._timer = self._loop.call_at(when, self._tick, when)

    def _tick(self, due: float) -> None:
        now = self._loop.time()
        dt = now - self._last_tick if self._last_tick else self.period_s
        self._last_tick = now
        wall = time.time()
        if self.fault is not None and self.fault.expired(wall):
            self.inject("recover")
        values = self.sample(wall, dt)
        connection = self.connection
        if connection is not None and not connection.is_connected:
            connection = None
        if not (self.fault and self.fault.kind == "dropout"):
            if self.telemetry_qos:
                if connection is not None or self._powered(now):  # kept while the broker is away
                    self.publish_telemetry(values)
            elif connection is not None and not connection.paused:
                self.publish_telemetry(values)
        if connection is not None:
            connection.keep_alive(now)
        following = due + self.period_s
        self._schedule(following if following > now else now + self.period_s)

    def sample(self, now: float, dt: float) -> dict[str, Any]:
        """The next reading of every metric, with the active fault applied."""
        fault = self.fault
        if fault is not None and fault.kind == "stuck" and self.last_values:
            return self.last_values
        values: dict[str, Any] = {name: s.sample(now, dt) for name, s in self.signals.items()}
        if self.motion is not None:
            self.motion.step(dt)
            values.update((k, v) for k, v in self.motion.values().items() if k in values)
        if fault is not None and fault.spec is not None and fault.metric is not None:
            if fault.kind == "spike":
                values[fault.metric] = spike_value(fault.spec)
                fault.samples_left -= 1
                if fault.samples_left <= 0:
                    log.info("%s: spike over", self.profile.id)
                    self.fault = None
            elif fault.kind == "drift":
                values[fault.metric] = drift_value(fault.spec, values[fault.metric],
                                                   now - fault.started, fault.ramp_s)
        self.last_values = values
        return values

    def _powered(self, now: float) -> bool:
        """Running, only cut off from the broker (not offline on purpose, rebooting, stopping)."""
        return not (self._offline or self._stopping or now < self._rest_until)

    def publish_telemetry(self, values: dict[str, Any]) -> None:
        payload = orjson.dumps({"ts": time.time(), "seq": self.seq, "values": values})
        if self.telemetry_qos:
            self.outbox.publish(self.connection, self.profile.telemetry, payload)
        else:
            assert self.connection is not None
            self.connection.publish(self.profile.telemetry, payload)
        self.seq += 1
        self.published += 1

    # commands and faults -----------------------------------------------------------------------
    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic != self.profile.command:
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
            result, detail = commands.execute(self, name, args, command_id)
        log.info("%s: command %s -> %s (%s)", self.profile.id, command_id, result, detail)
        if self.connection is not None:
            ack = {"ack": command_id, "result": result, "detail": detail, "ts": time.time()}
            self.outbox.publish(self.connection, self.profile.status, orjson.dumps(ack))

    def inject(self, kind: str, args: dict[str, Any] | None = None, fault_id: str = "") -> None:
        """Apply a fault now; raises FaultError when it cannot apply to this device."""
        fault = make_fault(kind, self.profile.metrics, self.period_s, args, fault_id)
        log.info("%s: fault %s%s", self.profile.id, kind, f" {args}" if args else "")
        was_offline = self._offline
        self.fault = None if kind == "recover" else fault
        self._offline = kind == "offline"
        if self._offline and self.connection is not None:
            self._loop.call_soon(self._drop)  # a fault sent as a command gets its ack out first
        elif was_offline and not self._offline:
            self._wake_up()

    def _wake_up(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _drop(self) -> None:
        if self._offline and self.connection is not None:
            self.connection.abort()

    @property
    def fault_kind(self) -> str | None:
        return self.fault.kind if self.fault else None
