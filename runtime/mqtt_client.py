"""A thin paho-mqtt 2.x wrapper: persistent MQTT v5 session, reconnect with backoff, resubscribe."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from .labfiles import LabFiles

log = logging.getLogger(__name__)

RawHandler = Callable[[str, bytes], None]
SESSION_EXPIRY_S = 24 * 3600
READ_CHUNK = 256 * 1024


class BufferedSocket:
    """A socket whose small reads are served from one large recv().

    paho reads each packet with three recv() calls (type, length, body); at tens of thousands
    of messages a second the system calls cost more than the parsing. `pending()` tells paho's
    loop that bytes are waiting, as it already does for TLS sockets.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        avail = len(self._buf) - self._pos
        if avail == 0:
            data = self._sock.recv(max(size, READ_CHUNK))
            if len(data) <= size:
                return data
            self._buf, self._pos, avail = data, 0, len(data)
        end = self._pos + min(size, avail)
        chunk = self._buf[self._pos:end]
        self._pos = end
        return chunk

    def pending(self) -> int:
        return len(self._buf) - self._pos

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _PahoClient(paho.Client):
    def _create_socket(self) -> Any:  # private hook; plain sockets only
        sock = super()._create_socket()  # type: ignore[misc]
        if isinstance(sock, socket.socket) and not isinstance(sock, ssl.SSLSocket):
            return BufferedSocket(sock)
        return sock


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class MqttClient:
    """One MQTT connection with a stable client id and a session that survives restarts.

    Messages go to `on_raw(topic, payload)` in paho's network thread: keep it cheap (queue the
    pair, process elsewhere). Subscriptions are remembered and renewed after every reconnect.
    """

    def __init__(
        self,
        client_id: str,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        *,
        ca_file: Path | None = None,
        on_raw: RawHandler | None = None,
        will: Will | None = None,
        session_expiry_s: int = SESSION_EXPIRY_S,
        receive_maximum: int = 1000,
        keepalive: int = 30,
        buffered: bool = True,
    ) -> None:
        cls = _PahoClient if buffered else paho.Client
        self._client = cls(CallbackAPIVersion.VERSION2, client_id=client_id,
                           protocol=paho.MQTTv5)
        self.client_id = client_id
        self._host, self._port, self._keepalive = host, port, keepalive
        if username is not None:
            self._client.username_pw_set(username, password)
        if ca_file is not None:
            self._client.tls_set(ca_certs=str(ca_file))
        if will is not None:
            self._client.will_set(will.topic, will.payload, will.qos, will.retain)
        self._client.reconnect_delay_set(min_delay=1, max_delay=15)
        self._client.max_queued_messages_set(0)
        self._client.max_inflight_messages_set(1000)
        self._session_expiry_s = session_expiry_s
        self._receive_maximum = receive_maximum
        self._subscriptions: dict[str, int] = {}
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.connects = 0
        self.on_raw = on_raw
        self.on_connected: Callable[[bool], None] | None = None
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    @classmethod
    def for_lab(cls, lab: LabFiles, user: str, client_id: str, *, tls: bool = False,
                **kwargs: Any) -> MqttClient:
        """A client of the lab's broker with `user`'s credentials from the secrets folder."""
        broker = lab.runtime.broker
        port = broker.tls_port if tls and broker.tls_port else broker.port
        return cls(client_id, broker.host, port, user, lab.password(user),
                   ca_file=lab.ca_file if tls else None, **kwargs)

    # -- connection ---------------------------------------------------------------------------

    def start(self, wait_s: float | None = 10.0) -> None:
        """Connect in the background (retrying with backoff); wait up to `wait_s` for it."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self._session_expiry_s
        props.ReceiveMaximum = self._receive_maximum
        self._client.connect_async(self._host, self._port, self._keepalive,
                                   clean_start=False, properties=props)
        self._client.loop_start()
        if wait_s is not None and not self.connected.wait(wait_s):
            log.warning("%s: broker %s:%d not reachable yet, retrying in the background",
                        self.client_id, self._host, self._port)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.error("%s: connection refused: %s", self.client_id, reason)
            return
        self.connects += 1
        session_present = bool(getattr(flags, "session_present", False))
        log.info("%s: connected to %s:%d (session present: %s)", self.client_id, self._host,
                 self._port, session_present)
        with self._lock:
            subs = list(self._subscriptions.items())
        if subs:
            self._subscribe_many(subs)
        self.connected.set()
        if self.on_connected is not None:
            self.on_connected(session_present)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self.connected.clear()
        log.warning("%s: disconnected (%s); reconnecting", self.client_id, reason)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        handler = self.on_raw
        if handler is not None:
            handler(msg.topic, msg.payload)

    # -- pub/sub ------------------------------------------------------------------------------

    def subscribe(self, topics: dict[str, int] | list[str], qos: int = 1) -> None:
        """Subscribe now (when connected) and after every reconnect."""
        wanted = topics if isinstance(topics, dict) else dict.fromkeys(topics, qos)
        with self._lock:
            self._subscriptions.update(wanted)
        if self.connected.is_set():
            self._subscribe_many(list(wanted.items()))

    def _subscribe_many(self, subs: list[tuple[str, int]]) -> None:
        # retainHandling 1: retained messages only for a new subscription, not on renewal.
        for start in range(0, len(subs), 100):
            chunk = [(t, SubscribeOptions(qos=q, retainHandling=1))
                     for t, q in subs[start:start + 100]]
            rc, _ = self._client.subscribe(chunk)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                log.warning("%s: subscribe failed: %s", self.client_id, rc)

    def publish(self, topic: str, payload: bytes | str, qos: int = 0,
                retain: bool = False) -> paho.MQTTMessageInfo:
        """Queue a message; QoS 1 messages published while disconnected go out on reconnect."""
        return self._client.publish(topic, payload, qos=qos, retain=retain)

    @property
    def paho(self) -> paho.Client:
        """The underlying paho client, for what this wrapper does not cover."""
        return self._client
