"""Test helpers for the twin engine: a generated demo lab, a restartable broker, devices."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import uuid
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from dtnlab.runtime.engine import EngineConfig
from dtnlab.runtime.engine.anomaly import AnomalyConfig
from dtnlab.runtime.labfiles import LabFiles
from tests.broker import MOSQUITTO, Broker
from tests.waiting import wait_for

SENSOR = "aar-l1-c1-tt-01"  # temperature: normal [15, 30], warning [10, 35], min -50, max 150
WAIT = 5.0


def close_paho(client: mqtt.Client) -> None:
    """Disconnect and close every socket, the wake-up pair included (paho leaves it to GC)."""
    client.disconnect()
    client.loop_stop()
    client._reset_sockets()


class RestartableBroker(Broker):
    """The shared test broker, plus a restart that keeps its working folder (persistence)."""

    def restart(self, down_s: float = 0.5) -> None:
        assert self.process is not None
        assert self.workdir is not None
        self.process.terminate()  # mosquitto saves its persistence file on SIGTERM
        self.process.wait(timeout=5)
        time.sleep(down_s)
        account = self._account
        with (self.workdir / "run" / "stderr.log").open("ab") as stderr:
            self.process = subprocess.Popen(
                [MOSQUITTO, "-c", "mosquitto/local.conf"], cwd=self.workdir,
                stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                user=account.pw_uid if account else None,
                group=account.pw_gid if account else None,
                extra_groups=[] if account else None)
        from tests.broker import _port_open

        wait_for(lambda: _port_open(self.mqtt_port), what="the broker to come back")


class Device:
    """A device with its own credentials: birth, telemetry, last will, acks to commands."""

    def __init__(self, lab: LabFiles, twin_id: str, *, auto_ack: str | None = "ok",
                 client_id: str | None = None, persistent: bool = False) -> None:
        self.twin = lab.twins[twin_id]
        broker = lab.runtime.broker
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"{twin_id}-{uuid.uuid4().hex[:6]}",
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(self.twin.mqtt_user, lab.password(self.twin.mqtt_user))
        self.client.will_set(self.twin.topics.status, orjson.dumps({"state": "offline"}), 1, True)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.max_queued_messages_set(0)
        self.commands: list[dict[str, Any]] = []
        self.auto_ack = auto_ack
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.client.on_connect = lambda *a: self.connected.set()
        props = None
        if persistent:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
        self.client.connect(broker.host, broker.port, keepalive=30,
                            clean_start=not persistent, properties=props)
        self.client.loop_start()
        assert self.connected.wait(WAIT), "device could not connect"
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.subscribe(self.twin.topics.command, 1)
        assert subscribed.wait(WAIT), "device could not subscribe to its commands"
        self.seq = 0

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        cmd = orjson.loads(msg.payload)
        self.commands.append(cmd)
        if self.auto_ack:
            ack = {"ack": cmd["id"], "result": self.auto_ack, "detail": "done", "ts": time.time()}
            client.publish(self.twin.topics.status, orjson.dumps(ack), 1)

    def birth(self) -> None:
        self.client.publish(self.twin.topics.status,
                            orjson.dumps({"state": "online", "ts": time.time()}), 1, True)

    def send(self, values: dict[str, Any], qos: int = 1) -> int:
        self.seq += 1
        msg = {"ts": time.time(), "seq": self.seq, "values": values}
        self.client.publish(self.twin.topics.telemetry, orjson.dumps(msg), qos).wait_for_publish(
            WAIT)
        return self.seq

    def raw(self, payload: bytes, topic: str | None = None) -> None:
        self.client.publish(topic or self.twin.topics.telemetry, payload, 1).wait_for_publish(
            WAIT)

    def die(self) -> None:
        """Drop the connection without DISCONNECT: the broker sends the last will."""
        self.client.reconnect_delay_set(30, 30)  # stay dead until close()
        sock = self.client.socket()
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        close_paho(self.client)


def engine_config(**overrides: Any) -> EngineConfig:
    base: dict[str, Any] = {
        "client_id": f"dtn-engine-test-{uuid.uuid4().hex[:8]}", "tick_s": 0.05,
        "aggregate_period_s": 0.3, "status_period_s": 0.2,
        "anomaly": AnomalyConfig(window=40, warmup=12, refresh=4, threshold=6.0, clear_after=3)}
    base.update(overrides)
    return EngineConfig(**base)


class Listener:
    """Collects what the engine publishes (twin state, alerts, aggregates) as the runtime user."""

    def __init__(self, lab: LabFiles, topics: list[str]) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"listener-{uuid.uuid4().hex[:6]}",
                                  protocol=mqtt.MQTTv5)
        user = lab.runtime.runtime_user
        self.client.username_pw_set(user, lab.password(user))
        self.client.on_message = lambda c, u, m: self.messages.append(
            (m.topic, orjson.loads(m.payload)))
        ready = threading.Event()
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.connect(lab.runtime.broker.host, lab.runtime.broker.port)
        self.client.loop_start()
        self.client.subscribe([(t, 1) for t in topics])
        assert ready.wait(WAIT)

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [doc for t, doc in self.messages if t == topic]

    def close(self) -> None:
        close_paho(self.client)
