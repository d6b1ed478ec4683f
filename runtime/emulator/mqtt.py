"""A lean MQTT 3.1.1 client on an asyncio Protocol: one object per connection, no thread."""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14
DUP = 0x08  # first-byte flag of a PUBLISH sent again
OUTBOX_LIMIT = 100  # QoS 1 messages a client keeps unacknowledged: 100 telemetry periods
CONNACK_REASONS = {1: "unacceptable protocol version", 2: "client id rejected",
                   3: "server unavailable", 4: "bad user name or password", 5: "not authorised"}

MessageHandler = Callable[[str, bytes], None]


class MqttError(Exception):
    """The broker refused the connection or it failed before CONNACK."""


@dataclass(frozen=True)
class Will:
    """A last will: what the broker publishes for a client that drops (this one and paho's)."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def _packet(first_byte: int, body: bytes) -> bytes:
    """Fixed header (type/flags, remaining length as a varint) and body."""
    header = bytearray((first_byte,))
    length = len(body)
    while True:
        byte, length = length & 0x7F, length >> 7
        header.append(byte | 0x80 if length else byte)
        if not length:
            return bytes(header) + body


def connect_packet(client_id: str, username: str | None, password: str | None,
                   keepalive: int, will: Will | None, clean_session: bool) -> bytes:
    flags = 0x02 if clean_session else 0
    payload = _utf8(client_id)
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
        payload += _utf8(will.topic) + struct.pack("!H", len(will.payload)) + will.payload
    if username is not None:
        flags |= 0x80
        payload += _utf8(username)
    if password is not None:
        flags |= 0x40
        payload += _utf8(password)
    return _packet(CONNECT << 4, _utf8("MQTT") + bytes((4, flags)) + struct.pack("!H", keepalive)
                   + payload)


def publish_packet(topic: str, payload: bytes, qos: int, retain: bool, packet_id: int) -> bytes:
    body = _utf8(topic) + (struct.pack("!H", packet_id) if qos else b"") + payload
    return _packet((PUBLISH << 4) | (qos << 1) | int(retain), body)


def subscribe_packet(packet_id: int, topics: list[tuple[str, int]]) -> bytes:
    body = struct.pack("!H", packet_id) + b"".join(_utf8(t) + bytes((q,)) for t, q in topics)
    return _packet((SUBSCRIBE << 4) | 0x02, body)


PINGREQ_PACKET = _packet(PINGREQ << 4, b"")
DISCONNECT_PACKET = _packet(DISCONNECT << 4, b"")


class Outbox:
    """A client's QoS 1 publishes, kept across its connections until the broker acknowledges.

    A message waits in the queue until a connection can take it, then in flight until its
    PUBACK. After a reconnect what was in flight goes out again with the DUP flag (MQTT 3.1.1,
    4.4), then the queue, in the order they were made. Past `limit` messages the oldest is
    dropped and counted: a device's memory is finite and its newest readings matter most.
    Retained state messages (birth, offline) do not belong here: each connection announces
    its own, and an old one resent after a new birth would contradict it.
    """

    __slots__ = ("limit", "inflight", "queued", "acked", "resent", "held", "dropped",
                 "_packet_id")

    def __init__(self, limit: int = OUTBOX_LIMIT) -> None:
        self.limit = limit
        self.inflight: dict[int, bytes] = {}  # packet id -> PUBLISH packet, oldest first
        self.queued: list[tuple[str, bytes]] = []
        self.acked = self.resent = self.dropped = 0
        self.held = 0  # messages that had to wait for a connection
        self._packet_id = 0

    def __len__(self) -> int:
        return len(self.inflight) + len(self.queued)

    def next_id(self) -> int:
        """A packet id no message in flight uses."""
        while True:
            self._packet_id = self._packet_id % 65535 + 1
            if self._packet_id not in self.inflight:
                return self._packet_id

    def publish(self, connection: MqttConnection | None, topic: str, payload: bytes) -> None:
        """Send now when `connection` can take it, else keep it for the next one."""
        if len(self) >= self.limit:
            if self.queued:
                del self.queued[0]
            else:
                del self.inflight[next(iter(self.inflight))]
            self.dropped += 1
        self.queued.append((topic, payload))
        if connection is not None and connection.is_connected and not connection.paused:
            self.flush(connection)
        else:
            self.held += 1

    def flush(self, connection: MqttConnection) -> None:
        queued, self.queued = self.queued, []
        for topic, payload in queued:
            packet_id = self.next_id()
            packet = publish_packet(topic, payload, 1, False, packet_id)
            self.inflight[packet_id] = packet
            connection._write(packet)

    def resume(self, connection: MqttConnection) -> None:
        """On a new connection: resend what was never acknowledged, then the queue."""
        for packet in self.inflight.values():
            connection._write(bytes((packet[0] | DUP,)) + packet[1:])
        self.resent += len(self.inflight)
        self.flush(connection)

    def on_puback(self, packet_id: int) -> None:
        if self.inflight.pop(packet_id, None) is not None:
            self.acked += 1


class MqttConnection(asyncio.Protocol):
    """One MQTT session: CONNECT on connection_made, then publish/subscribe until lost.

    Args:
        client_id: MQTT client id (the device id, so a persistent session survives reconnects).
        username, password: the device's own credentials.
        keepalive: seconds; the owner calls `keep_alive()` periodically to send PINGREQ when idle.
        will: the last will, published by the broker when the connection drops without DISCONNECT.
        on_message: called with (topic, payload) for every PUBLISH received.
        outbox: the client's QoS 1 messages that outlive this connection (see Outbox); its
            PUBACKs are matched here, and packet ids come from it so they never collide.
    """

    def __init__(self, client_id: str, username: str | None = None, password: str | None = None,
                 keepalive: int = 30, will: Will | None = None, clean_session: bool = True,
                 on_message: MessageHandler | None = None, outbox: Outbox | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.client_id = client_id
        self.keepalive = keepalive
        self.on_message = on_message
        self.outbox = outbox
        self.connack: asyncio.Future[bool] = loop.create_future()  # result: session present
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.paused = False  # the socket buffer is full: drop telemetry rather than queue it
        self.last_sent = time.monotonic()
        self._connect = connect_packet(client_id, username, password, keepalive, will,
                                       clean_session)
        self._buffer = b""
        self._packet_id = 0
        self._pending: dict[int, asyncio.Future[int]] = {}

    # asyncio.Protocol -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._write(self._connect)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.connack.done():
            self.connack.set_exception(MqttError(f"connection lost before CONNACK: {exc}"))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(MqttError("connection lost"))
        self._pending.clear()
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        pos, end = 0, len(buffer)
        while end - pos >= 2:
            length, shift, i = 0, 0, pos + 1
            while True:
                if i >= end:
                    self._buffer = buffer[pos:]
                    return
                byte = buffer[i]
                length |= (byte & 0x7F) << shift
                i += 1
                if not byte & 0x80:
                    break
                shift += 7
            if end - i < length:
                break
            self._handle(buffer[pos], buffer[i:i + length])
            pos = i + length
        self._buffer = buffer[pos:]

    # packets in --------------------------------------------------------------------------------
    def _handle(self, first: int, body: bytes) -> None:
        kind = first >> 4
        if kind == PUBLISH:
            qos = (first >> 1) & 0x03
            topic_len = struct.unpack_from("!H", body)[0]
            topic = body[2:2 + topic_len].decode()
            start = 2 + topic_len
            if qos:
                packet_id = struct.unpack_from("!H", body, start)[0]
                start += 2
                self._write(_packet((PUBACK if qos == 1 else PUBREC) << 4,
                                    struct.pack("!H", packet_id)))
            if self.on_message is not None:
                try:
                    self.on_message(topic, body[start:])
                except Exception:  # a bad message must not kill the connection
                    log.exception("%s: handling a message on %s failed", self.client_id, topic)
        elif kind == CONNACK:
            code = body[1]
            if code:
                reason = CONNACK_REASONS.get(code, f"code {code}")
                if not self.connack.done():
                    self.connack.set_exception(MqttError(f"connection refused: {reason}"))
            elif not self.connack.done():
                self.connack.set_result(bool(body[0] & 1))
        elif kind in (PUBACK, SUBACK, PUBCOMP):
            packet_id = struct.unpack_from("!H", body)[0]
            future = self._pending.pop(packet_id, None)
            if future is not None:
                if not future.done():
                    future.set_result(body[2] if kind == SUBACK and len(body) > 2 else 0)
            elif kind == PUBACK and self.outbox is not None:
                self.outbox.on_puback(packet_id)
        elif kind == PUBREC:
            self._write(_packet((PUBREL << 4) | 0x02, body[:2]))
        elif kind == PUBREL:
            self._write(_packet(PUBCOMP << 4, body[:2]))

    # packets out -------------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self.transport is not None and self.connack.done() and not self.connack.exception()

    def _write(self, packet: bytes) -> None:
        if self.transport is not None:
            self.transport.write(packet)
            self.last_sent = time.monotonic()

    def _next_id(self) -> int:
        while True:
            if self.outbox is not None:
                packet_id = self.outbox.next_id()
            else:
                packet_id = self._packet_id = self._packet_id % 65535 + 1
            if packet_id not in self._pending:
                return packet_id

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        """Send a PUBLISH; QoS 1 is fire-and-forget here (see Outbox and `publish_confirmed`)."""
        self._write(publish_packet(topic, payload, qos, retain, self._next_id() if qos else 0))

    async def publish_confirmed(self, topic: str, payload: bytes, retain: bool = False,
                                timeout: float = 5.0) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK."""
        packet_id = self._next_id()
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[packet_id] = future
        self._write(publish_packet(topic, payload, 1, retain, packet_id))
        await asyncio.wait_for(future, timeout)

    async def subscribe(self, topics: list[tuple[str, int]], timeout: float = 5.0) -> int:
        """Subscribe and return the first granted QoS (0x80 means refused)."""
        packet_id = self._next_id()
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[packet_id] = future
        self._write(subscribe_packet(packet_id, topics))
        return await asyncio.wait_for(future, timeout)

    def keep_alive(self, now: float) -> None:
        """Send PINGREQ when nothing went out for most of the keepalive interval."""
        if self.transport is not None and now - self.last_sent > self.keepalive * 0.75:
            self._write(PINGREQ_PACKET)

    def disconnect(self) -> None:
        """A clean DISCONNECT: the broker discards the will."""
        if self.transport is not None:
            self._write(DISCONNECT_PACKET)
            self.transport.close()

    def abort(self) -> None:
        """Drop the TCP connection without DISCONNECT, so the broker publishes the will."""
        if self.transport is not None:
            self.transport.abort()


async def open_connection(connection: MqttConnection, host: str, port: int,
                          tls: ssl.SSLContext | None = None, timeout: float = 10.0,
                          gate: asyncio.Semaphore | None = None) -> bool:
    """Connect `connection` and wait for CONNACK; return whether the broker kept a session.

    `gate` bounds only the TCP (and TLS) handshakes in flight, which wait in the broker's
    listen backlog; the CONNACK wait happens outside it.
    """
    loop = asyncio.get_running_loop()
    handshake = loop.create_connection(lambda: connection, host, port, ssl=tls)
    if gate is None:
        await asyncio.wait_for(handshake, timeout)
    else:
        async with gate:
            await asyncio.wait_for(handshake, timeout)
    try:
        return await asyncio.wait_for(connection.connack, timeout)
    except BaseException:
        connection.abort()
        raise
