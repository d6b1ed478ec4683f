"""A cheap load generator: raw MQTT 3.1.1 PUBLISH packets, pre-built, one connection per device.

Run by bench/ingest_bench.py as a subprocess: `python bench/ingest_publisher.py SPEC.json`.
Prints one JSON line: {"sent": n, "acked": n, "seconds": s}.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import sys
import time
from typing import Any

import orjson


def _varlen(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str, user: str, password: str) -> bytes:
    var = _string("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 600)  # user, password, clean
    body = var + _string(client_id) + _string(user) + _string(password)
    return b"\x10" + _varlen(len(body)) + body


def publish_parts(topic: str, payload: bytes, qos: int) -> tuple[bytes, bytes]:
    """The packet before and after its 2-byte packet id (QoS 1), to splice ids in cheaply."""
    size = len(_string(topic)) + (2 if qos else 0) + len(payload)
    return bytes([0x30 | (qos << 1)]) + _varlen(size) + _string(topic), payload


def publish_packet(topic: str, payload: bytes, qos: int, mid: int = 0) -> bytes:
    head, tail = publish_parts(topic, payload, qos)
    return head + (struct.pack("!H", mid) if qos else b"") + tail


def sample_values(metrics: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, m in metrics.items():
        if m["type"] == "bool":
            values[name] = rng.random() < 0.5
        elif m["type"] == "str":
            values[name] = "ok"
        else:
            lo, hi = m.get("normal") or (m.get("min") or 0.0, m.get("max") or 100.0)
            v = lo + (hi - lo) * (0.3 + 0.4 * rng.random())
            values[name] = int(v) if m["type"] == "int" else round(v, 3)
    return values


class Connection:
    def __init__(self, host: str, port: int, dev: dict[str, Any]) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(connect_packet(f"bench-{dev['id']}-{time.time_ns()}", dev["user"],
                                         dev["password"]))
        ack = self.sock.recv(4)
        if len(ack) < 4 or ack[3] != 0:
            raise SystemExit(f"{dev['id']}: CONNACK refused: {ack!r}")
        self.sock.setblocking(False)
        self.dev = dev
        self.mid = 0
        self.acked = 0
        self.pending = b""

    def drain_acks(self) -> None:
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return
                self.acked += len(data) // 4  # PUBACK is 4 bytes; nothing else comes back
        except BlockingIOError:
            return

    def send(self, data: bytes) -> None:
        self.pending += data
        while self.pending:
            try:
                n = self.sock.send(self.pending)
            except BlockingIOError:
                self.drain_acks()
                time.sleep(0.0005)
                continue
            self.pending = self.pending[n:]


def run(spec: dict[str, Any]) -> dict[str, Any]:
    rng = random.Random(spec.get("seed", 1))
    qos, rate, duration = spec["qos"], spec["rate"], spec["duration"]
    live = spec.get("live", False)
    conns = [Connection(spec["host"], spec["port"], d) for d in spec["devices"]]
    prebuilt: list[list[tuple[bytes, bytes]]] = []
    if not live:  # packets built once; QoS 1 ones get their packet id spliced in
        for c in conns:
            msgs = []
            for i in range(64):
                doc = {"ts": time.time(), "seq": i, "values": sample_values(c.dev["metrics"], rng)}
                msgs.append(publish_parts(c.dev["topic"], orjson.dumps(doc), qos))
            prebuilt.append(msgs)
    pack_mid = struct.Struct("!H").pack
    while time.time() < spec["start_at"]:
        time.sleep(0.001)
    start = time.perf_counter()
    sent = 0
    seq = 0
    n_conns = len(conns)
    tick = 0.005
    while True:
        elapsed = time.perf_counter() - start
        if elapsed >= duration:
            break
        due = int(rate * elapsed) - sent if rate else 2000
        if due <= 0:
            time.sleep(tick)
            continue
        per_conn = [bytearray() for _ in conns]
        for k in range(min(due, 5000)):
            ci = (sent + k) % n_conns
            c = conns[ci]
            if live:
                seq += 1
                doc = {"ts": time.time(), "seq": seq,
                       "values": sample_values(c.dev["metrics"], rng)}
                c.mid = c.mid % 65535 + 1
                per_conn[ci] += publish_packet(c.dev["topic"], orjson.dumps(doc), qos, c.mid)
            else:
                head, tail = prebuilt[ci][(sent + k) // n_conns % 64]
                buf = per_conn[ci]
                buf += head
                if qos:
                    c.mid = c.mid % 65535 + 1
                    buf += pack_mid(c.mid)
                buf += tail
        for c, data in zip(conns, per_conn, strict=True):
            if data:
                c.send(bytes(data))
            if qos:
                c.drain_acks()
        sent += min(due, 5000)
    deadline = time.time() + 5
    while qos and time.time() < deadline and sum(c.acked for c in conns) < sent:
        for c in conns:
            c.drain_acks()
        time.sleep(0.005)
    seconds = time.perf_counter() - start
    for c in conns:
        c.sock.setblocking(True)
        c.sock.sendall(b"\xe0\x00")  # DISCONNECT
        c.sock.close()
    return {"sent": sent, "acked": sum(c.acked for c in conns), "seconds": seconds}


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:  # noqa: PTH123
        result = run(json.load(handle))
    sys.stdout.write(json.dumps(result) + "\n")
