"""The API's live view of the lab over MQTT: retained twin states, telemetry, alerts, acks.

paho's network thread only files what arrives: the newest raw telemetry per twin (parsed when
someone looks), state and alert documents as events, acks to whoever waits. The WebSocket hub
drains the events and the changed telemetry on the event loop. Telemetry comes on a second
connection, open only while a live view wants it: everything else reads values from storage.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from ..labfiles import LabFiles
from ..mqtt_client import MqttClient

log = logging.getLogger(__name__)

TELEMETRY, STATE, ALERT, STATUS = "telemetry", "state", "alert", "status"
CONTROL = "control"
TWIN_LEVEL = "_twin"
MAX_EVENTS = 100_000  # beyond this, nobody drains: keep the newest

AckWaiter = Callable[[dict[str, Any]], None]


class LiveFeed:
    """The lab's API user on the broker (plus a telemetry connection on demand), and what
    it heard.

    Args:
        lab: the loaded lab.
        client: an MQTT client to use instead of the API user's (tests).
    """

    def __init__(self, lab: LabFiles, client: MqttClient | None = None) -> None:
        ent = lab.runtime.enterprise
        self.enterprise = ent
        self._lab = lab
        self.client = client or MqttClient.for_lab(
            lab, lab.runtime.api_user, f"dtn-api-{lab.runtime.lab}-{os.getpid()}",
            session_expiry_s=0)
        self.client.raw_sink = self._on_message
        self._routes: dict[str, tuple[str, str]] = {}
        self.command_topics: dict[str, str] = {}
        self.route(lab)
        every = f"{ent}/+/+/+/+/+"
        self.subscriptions = {f"{ent}/{TWIN_LEVEL}/+/state": 1, f"{every}/status": 1,
                              f"{every}/alert": 1}
        self.telemetry_topic = f"{every}/telemetry"
        self._telemetry_client: MqttClient | None = None
        self._telemetry_clients = 0
        self.states: dict[str, dict[str, Any]] = {}
        self.device_status: dict[str, str] = {}
        self._telemetry: dict[str, bytes] = {}
        self._changed: dict[str, bytes] = {}
        self._events: deque[tuple[str, str, dict[str, Any]]] = deque(maxlen=MAX_EVENTS)
        self._waiters: dict[str, AckWaiter] = {}
        self.alert_devices: dict[str, str] = {}  # alert id -> twin, for acks of live alerts
        self._lock = threading.Lock()
        self.received = dict.fromkeys((TELEMETRY, STATE, ALERT, STATUS), 0)
        self.started_at = 0.0

    def route(self, lab: LabFiles) -> None:
        """Map every twin's topics (again, after a regen); the wildcard subscriptions already
        cover any device. Each table is replaced in one assignment: paho's thread reads them."""
        routes: dict[str, tuple[str, str]] = {}
        commands: dict[str, str] = {}
        for twin in lab.twins.values():
            t = twin.topics
            routes[t.telemetry] = (twin.id, TELEMETRY)
            routes[t.status] = (twin.id, STATUS)
            routes[t.alert] = (twin.id, ALERT)
            routes[twin.twin_state_topic] = (twin.id, STATE)
            commands[twin.id] = t.command
        self._routes, self.command_topics = routes, commands

    def forget(self, twin: str) -> None:
        """Drop what was heard of a twin that left the lab."""
        self.states.pop(twin, None)
        self.device_status.pop(twin, None)
        self._telemetry.pop(twin, None)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, wait_s: float | None = 5.0) -> None:
        self.started_at = time.time()
        self.client.subscribe(self.subscriptions)
        self.client.start(wait_s)

    def stop(self) -> None:
        self.listen_to_telemetry(False)
        self.client.stop()

    def listen_to_telemetry(self, on: bool) -> None:
        """Hear every device's telemetry, or stop. Only live views need it (the rest reads
        storage), so it has a connection of its own, opened while someone watches."""
        if on and self._telemetry_client is None:
            self._telemetry_clients += 1
            lab = self._lab
            client = MqttClient.for_lab(
                lab, lab.runtime.api_user,
                f"dtn-api-{lab.runtime.lab}-{os.getpid()}-telemetry-{self._telemetry_clients}",
                session_expiry_s=0)
            client.raw_sink = self._on_message
            client.subscribe({self.telemetry_topic: 0})
            client.start(wait_s=None)
            self._telemetry_client = client
            log.info("api: listening to telemetry for live views")
        elif not on and self._telemetry_client is not None:
            client, self._telemetry_client = self._telemetry_client, None
            client.stop()
            with self._lock:  # what it heard goes stale from now on
                self._telemetry.clear()
                self._changed.clear()
            log.info("api: no live view watches telemetry; stopped listening")

    @property
    def telemetry_live(self) -> bool:
        return self._telemetry_client is not None

    @property
    def connected(self) -> bool:
        return self.client.connected.is_set()

    # -- paho thread --------------------------------------------------------------------------

    def _on_message(self, message: tuple[str, bytes]) -> None:
        topic, payload = message
        route = self._routes.get(topic)
        if route is None:
            return
        twin, kind = route
        self.received[kind] += 1
        if kind == TELEMETRY:
            with self._lock:
                self._telemetry[twin] = payload
                self._changed[twin] = payload
            return
        try:
            doc = orjson.loads(payload) if payload else None
        except orjson.JSONDecodeError:
            return
        if type(doc) is not dict:
            return
        if kind == STATE:
            self.states[twin] = doc
            self._events.append((STATE, twin, doc))
        elif kind == ALERT:
            if len(self.alert_devices) >= MAX_EVENTS:
                self.alert_devices.clear()
            self.alert_devices[str(doc.get("id"))] = twin
            self._events.append((ALERT, twin, doc))
        elif "ack" in doc:
            with self._lock:
                waiter = self._waiters.pop(str(doc["ack"]), None)
            if waiter is not None:
                waiter(doc)
        elif doc.get("state") in ("online", "offline"):
            self.device_status[twin] = str(doc["state"])
            self._events.append((STATUS, twin, doc))

    # -- readers ------------------------------------------------------------------------------

    def telemetry(self, twin: str) -> dict[str, Any] | None:
        """The newest telemetry message of a twin heard since the API started, decoded."""
        raw = self._telemetry.get(twin)
        if raw is None:
            return None
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        return doc if type(doc) is dict else None

    def inject(self, kind: str, twin: str, doc: dict[str, Any]) -> None:
        """An event the API itself made (an alert ack), streamed like the broker's."""
        self._events.append((kind, twin, doc))

    def drain(self) -> tuple[list[tuple[str, str, dict[str, Any]]], dict[str, bytes]]:
        """Events since the last drain, in order, and the newest raw telemetry of each twin
        that sent any."""
        events = []
        popleft = self._events.popleft
        for _ in range(len(self._events)):
            events.append(popleft())
        with self._lock:
            changed, self._changed = self._changed, {}
        return events, changed

    # -- outputs ------------------------------------------------------------------------------

    def expect_ack(self, command_id: str, waiter: AckWaiter) -> None:
        with self._lock:
            self._waiters[command_id] = waiter

    def forget_ack(self, command_id: str) -> None:
        with self._lock:
            self._waiters.pop(command_id, None)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos=qos)

    def control_topic(self, twin: str) -> str:
        """The engine's control topic of a twin (maintenance on/off)."""
        return f"{self.enterprise}/{TWIN_LEVEL}/{twin}/{CONTROL}"
