"""A thin paho-mqtt 2.x wrapper: persistent MQTT v5 session, reconnect with backoff, resubscribe."""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.client import PUBACK
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from .emulator.mqtt import Will  # one last-will type for both clients; stdlib only
from .labfiles import LabFiles

log = logging.getLogger(__name__)

RawSink = Callable[[tuple[str, bytes]], None]  # e.g. deque.append
SESSION_EXPIRY_S = 24 * 3600
READ_CHUNK = 256 * 1024


class _FastReadClient(paho.Client):
    """paho with a batch reader for the ingest hot path; paho still does everything else.

    Stock paho reads a packet with three recv() calls and one select(), then builds an
    MQTTMessage and, on MQTT v5, a Properties object: 20-40 us a message, more than the whole
    twin engine. This reader takes whatever the socket has, cuts every complete PUBLISH out of
    it and hands (topic, payload) on at once; QoS 1 acks go out as one write per read. Other
    packets (CONNACK, SUBACK, PINGRESP, QoS 2, ...) go through paho's own handlers unchanged.
    """

    raw_sink: Callable[[tuple[str, bytes]], None] | None = None
    backlog: Callable[[], int] | None = None
    max_backlog = 0
    _fast_buf = b""

    def _packet_read(self) -> MQTTErrorCode:
        sink = self.raw_sink
        if sink is None or self._in_packet["command"]:
            return super()._packet_read()
        if self.backlog is not None and self.backlog() >= self.max_backlog:
            # The consumer is behind: leave the bytes in the socket so TCP pushes back on the
            # broker, whose own queue limits then apply, instead of growing without bound here.
            time.sleep(0.002)
            return MQTTErrorCode.MQTT_ERR_AGAIN
        try:
            data = self._sock_recv(READ_CHUNK)
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_AGAIN
        except OSError as err:
            log.debug("%s: receive failed: %s", self._client_id, err)
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        if not data:
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        buf = self._fast_buf + data if self._fast_buf else data
        size = len(buf)
        v5 = self._protocol == paho.MQTTv5
        acks: list[int] = []
        pos = 0
        rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        while size - pos >= 2:
            cmd = buf[pos]
            length, mult, i = 0, 1, pos + 1
            complete = False
            while i < size:
                byte = buf[i]
                i += 1
                length += (byte & 127) * mult
                if not byte & 128:
                    complete = True
                    break
                if i - pos > 4:
                    return MQTTErrorCode.MQTT_ERR_PROTOCOL
                mult <<= 7
            if not complete:
                break  # the length is not all here yet
            end = i + length
            if end > size:
                break  # body not complete yet
            qos = (cmd >> 1) & 3
            if cmd & 0xF0 == 0x30 and qos < 2:
                t_end = i + 2 + ((buf[i] << 8) | buf[i + 1])
                try:
                    topic = buf[i + 2:t_end].decode()
                except UnicodeDecodeError:
                    topic = ""
                p = t_end
                if qos:
                    acks.append((buf[p] << 8) | buf[p + 1])
                    p += 2
                if v5:  # skip the properties: no topic aliases are allowed on this session
                    plen, mult = 0, 1
                    while True:
                        byte = buf[p]
                        p += 1
                        plen += (byte & 127) * mult
                        mult <<= 7
                        if not byte & 128:
                            break
                    p += plen
                sink((topic, buf[p:end]))
            else:
                self._in_packet = {"command": cmd, "have_remaining": 1, "remaining_count": [],
                                   "remaining_mult": 1, "remaining_length": length,
                                   "packet": bytearray(buf[i:end]), "to_process": 0, "pos": 0}
                try:
                    rc = self._packet_handle()
                except MalformedPacket:
                    rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
                self._in_packet = {"command": 0, "have_remaining": 0, "remaining_count": [],
                                   "remaining_mult": 1, "remaining_length": 0,
                                   "packet": bytearray(b""), "to_process": 0, "pos": 0}
                if rc or self._sock is None:
                    pos = end
                    break
            pos = end
        self._fast_buf = buf[pos:]
        if acks:
            self._packet_queue(PUBACK, b"".join(_PUBACK.pack(0x40, 2, mid) for mid in acks), 0, 0)
        with self._msgtime_mutex:
            self._last_bytes_received = time.monotonic()
        return rc


_PUBACK = struct.Struct("!BBH")


class MqttClient:
    """One MQTT connection with a stable client id and a session that survives restarts.

    Messages go to `raw_sink((topic, payload))` in paho's network thread: keep it cheap (a
    deque's append; process elsewhere). Subscriptions are remembered and renewed after every
    reconnect. `receive_maximum` is the QoS 1 window the broker may have in flight to us: on a
    busy host acks come back late, and with a window of 1,000 the broker dropped 55% of a
    30k msg/s QoS 1 load once its queue was full; with 65,535, 1%.
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
        raw_sink: RawSink | None = None,
        will: Will | None = None,
        session_expiry_s: int = SESSION_EXPIRY_S,
        receive_maximum: int = 65535,
        keepalive: int = 30,
        fast_read: bool = True,
    ) -> None:
        cls = _FastReadClient if fast_read else paho.Client
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
        self.connected = threading.Event()  # connected and every subscription acknowledged
        self._unacked: set[int] = set()
        self.connects = 0
        self.raw_sink = raw_sink
        self._stopping = False
        self.on_connected: Callable[[bool], None] | None = None
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

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
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._session_expiry_s
        props.ReceiveMaximum = self._receive_maximum
        self._client.connect_async(self._host, self._port, self._keepalive,
                                   clean_start=False, properties=props)
        self._client.loop_start()
        if wait_s is not None and not self.connected.wait(wait_s):
            log.warning("%s: broker %s:%d not reachable yet, retrying in the background",
                        self.client_id, self._host, self._port)

    def stop(self) -> None:
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()
        self._client._reset_sockets()  # paho leaves its wake-up socket pair to the GC
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
        self._subscribe_many(subs)
        if self.on_connected is not None:
            self.on_connected(session_present)

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: Any,
                      properties: Any) -> None:
        for reason in reasons:
            if reason.is_failure:
                log.error("%s: a subscription was refused: %s", self.client_id, reason)
        with self._lock:
            self._unacked.discard(mid)
            done = not self._unacked
        if done:
            self.connected.set()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self.connected.clear()
        if self._stopping:
            log.info("%s: disconnected", self.client_id)
        else:
            log.warning("%s: disconnected (%s); reconnecting", self.client_id, reason)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        sink = self._sink
        if sink is not None:
            sink((msg.topic, bytes(msg.payload)))

    def throttle(self, backlog: Callable[[], int], limit: int) -> None:
        """Stop reading from the broker while backlog() >= limit (fast reader only)."""
        if isinstance(self._client, _FastReadClient):
            self._client.backlog, self._client.max_backlog = backlog, limit

    @property
    def raw_sink(self) -> RawSink | None:
        return self._sink

    @raw_sink.setter
    def raw_sink(self, sink: RawSink | None) -> None:
        self._sink = sink
        if isinstance(self._client, _FastReadClient):
            self._client.raw_sink = sink

    # -- pub/sub ------------------------------------------------------------------------------

    def subscribe(self, topics: dict[str, int] | list[str], qos: int = 1) -> None:
        """Subscribe now (when connected) and after every reconnect."""
        wanted = topics if isinstance(topics, dict) else dict.fromkeys(topics, qos)
        with self._lock:
            self._subscriptions.update(wanted)
        if self._client.is_connected():
            self._subscribe_many(list(wanted.items()))

    def _subscribe_many(self, subs: list[tuple[str, int]]) -> None:
        """Subscribe in chunks; `connected` is set once the broker acknowledged them all."""
        if not subs:
            self.connected.set()
            return
        # retainHandling 1: retained messages only for a new subscription, not on renewal.
        with self._lock:
            for start in range(0, len(subs), 100):
                chunk = [(t, SubscribeOptions(qos=q, retainHandling=1))
                         for t, q in subs[start:start + 100]]
                rc, mid = self._client.subscribe(chunk)
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    log.warning("%s: subscribe failed: %s", self.client_id, rc)
                elif mid is not None:
                    self._unacked.add(mid)

    def publish(self, topic: str, payload: bytes | str, qos: int = 0,
                retain: bool = False) -> paho.MQTTMessageInfo:
        """Queue a message; QoS 1 messages published while disconnected go out on reconnect."""
        return self._client.publish(topic, payload, qos=qos, retain=retain)

    @property
    def paho(self) -> paho.Client:
        """The underlying paho client, for what this wrapper does not cover."""
        return self._client
