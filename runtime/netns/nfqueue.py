"""Userspace delay, jitter and loss for kernels without sch_netem, over netfilter queues.

iptables sends each impaired link's packets (both directions, at its routed end) to an NFQUEUE;
this daemon holds each packet for its delay and then accepts it, or drops it for loss. One process
serves every namespace of a lab: a netlink socket keeps the namespace it was opened in, so the
daemon opens one socket per namespace (setns around socket()) and waits on all of them. The queue
rules carry --queue-bypass: when the daemon is not running, packets pass unimpaired.

Run: `ip netns exec <services ns> python -m dtnlab.runtime.netns.nfqueue CONFIG`; SIGHUP reloads
CONFIG ({"links": [{"ns", "queue", "delay_ms", "jitter_ms", "loss_pct"}]}), SIGTERM stops.
"""

from __future__ import annotations

import argparse
import errno
import heapq
import json
import logging
import os
import random
import selectors
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .nsenter import socket_in

log = logging.getLogger(__name__)

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5
SO_RCVBUFFORCE = 33
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQA_CFG_MASK, NFQA_CFG_FLAGS = 4, 5
NFQA_CFG_F_FAIL_OPEN = 1
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_UNBIND = 1, 2
NFQNL_COPY_META = 1
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NF_DROP, NF_ACCEPT = 0, 1
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
QUEUE_MAXLEN = 20_000
RCVBUF = 8 * 1024 * 1024


@dataclass
class QueueParams:
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def _message(msg_type: int, queue: int, attrs: bytes, flags: int, seq: int) -> bytes:
    body = struct.pack("=BB", socket.AF_UNSPEC, 0) + struct.pack(">H", queue) + attrs
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg_type,
                       NLM_F_REQUEST | flags, seq, 0) + body


def config_messages(queue: int, bind: bool = True) -> list[bytes]:
    """Bind (or unbind) a queue, copy only packet metadata, accept when the queue is full."""
    cmd = NFQNL_CFG_CMD_BIND if bind else NFQNL_CFG_CMD_UNBIND
    first = _message(NFQNL_MSG_CONFIG, queue,
                     _attr(NFQA_CFG_CMD, struct.pack("=BB", cmd, 0) + struct.pack(">H", 0)),
                     NLM_F_ACK, queue * 4 + 1)
    if not bind:
        return [first]
    params = (_attr(NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META))
              + _attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", QUEUE_MAXLEN))
              + _attr(NFQA_CFG_FLAGS, struct.pack(">I", NFQA_CFG_F_FAIL_OPEN))
              + _attr(NFQA_CFG_MASK, struct.pack(">I", NFQA_CFG_F_FAIL_OPEN)))
    return [first, _message(NFQNL_MSG_CONFIG, queue, params, NLM_F_ACK, queue * 4 + 2)]


def verdict_message(queue: int, packet_id: int, verdict: int) -> bytes:
    return _message(NFQNL_MSG_VERDICT, queue,
                    _attr(NFQA_VERDICT_HDR, struct.pack(">II", verdict, packet_id)), 0, 0)


def parse_messages(data: bytes) -> list[tuple[int, int, int]]:
    """(message type, queue, packet id or error code) of each netlink message in `data`."""
    found = []
    offset = 0
    while offset + 16 <= len(data):
        length, msg_type = struct.unpack_from("=IH", data, offset)
        if length < 16:
            break
        if msg_type == NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", data, offset + 16)
            found.append((NLMSG_ERROR, 0, code))
        elif msg_type == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            (queue,) = struct.unpack_from(">H", data, offset + 18)
            pos, end = offset + 20, offset + length
            while pos + 4 <= end:
                attr_len, attr_type = struct.unpack_from("=HH", data, pos)
                if attr_len < 4:
                    break
                if attr_type & 0x7FFF == NFQA_PACKET_HDR:
                    (packet_id,) = struct.unpack_from(">I", data, pos + 4)
                    found.append((NFQNL_MSG_PACKET, queue, packet_id))
                    break
                pos += (attr_len + 3) & ~3
        offset += (length + 3) & ~3
    return found


def netlink_socket_in(netns: str) -> socket.socket:
    """A NETLINK_NETFILTER socket created inside the named namespace."""
    sock = socket_in(netns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
    except OSError as exc:
        log.warning("%s: socket options not set: %s", netns, exc)
    return sock


class Impairer:
    """Every queue of every namespace of a lab, and the packets they hold."""

    def __init__(self, config: Path, seed: int | None = None) -> None:
        self.config = config
        self.rng = random.Random(seed)
        self.selector = selectors.DefaultSelector()
        self.sockets: dict[str, socket.socket] = {}
        self.params: dict[tuple[str, int], QueueParams] = {}
        self.last_release: dict[tuple[str, int], float] = {}
        self.pending: list[tuple[float, int, str, int, int]] = []
        self.counter = 0
        self.reload_wanted = True
        self.stopping = False

    def _acked(self, ns: str, sock: socket.socket, what: str) -> None:
        """Wait for the kernel's answer to a config message; packets met meanwhile are kept."""
        sock.settimeout(2.0)
        try:
            while True:
                for msg_type, queue, value in parse_messages(sock.recv(65536)):
                    if msg_type == NFQNL_MSG_PACKET:
                        self._schedule(ns, sock, queue, value, time.monotonic())
                    elif value != 0:
                        raise OSError(-value, f"{what}: {os.strerror(-value)}")
                    else:
                        return
        finally:
            sock.setblocking(False)

    def reload(self) -> None:
        self.reload_wanted = False
        try:
            doc = json.loads(self.config.read_text())
            entries = doc.get("links", [])
        except (OSError, ValueError) as exc:
            log.error("%s: not reloaded: %s", self.config, exc)
            return
        wanted = {(str(e["ns"]), int(e["queue"])): QueueParams(
            float(e.get("delay_ms", 0)), float(e.get("jitter_ms", 0)),
            float(e.get("loss_pct", 0))) for e in entries}
        for key in sorted(set(self.params) - set(wanted)):
            sock = self.sockets.get(key[0])
            if sock is not None:
                sock.send(config_messages(key[1], bind=False)[0])
            del self.params[key]
        for key in sorted(wanted):
            ns, queue = key
            if key not in self.params:
                try:
                    sock = self.sockets.get(ns) or self._open(ns)
                    for message in config_messages(queue):
                        sock.send(message)
                        self._acked(ns, sock, f"{ns} queue {queue}")
                except OSError as exc:
                    log.error("%s queue %d: not bound: %s", ns, queue, exc)
                    continue
            self.params[key] = wanted[key]
            log.info("%s queue %d: delay %gms jitter %gms loss %g%%", ns, queue,
                     wanted[key].delay_ms, wanted[key].jitter_ms, wanted[key].loss_pct)
        # tell the writer which version is in force (it waits for this before returning)
        applied = self.config.with_name(self.config.name + ".applied")
        tmp = applied.with_name(f".{applied.name}.tmp")
        tmp.write_text(f"{doc.get('generation', 0)}\n")
        tmp.replace(applied)

    def _open(self, ns: str) -> socket.socket:
        sock = netlink_socket_in(ns)
        sock.setblocking(False)
        self.sockets[ns] = sock
        self.selector.register(sock, selectors.EVENT_READ, ns)
        return sock

    def _receive(self, ns: str, sock: socket.socket) -> None:
        now = time.monotonic()
        for _ in range(256):
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    continue
                raise
            for msg_type, queue, packet_id in parse_messages(data):
                if msg_type == NFQNL_MSG_PACKET:
                    self._schedule(ns, sock, queue, packet_id, now)

    def _schedule(self, ns: str, sock: socket.socket, queue: int, packet_id: int,
                  now: float) -> None:
        params = self.params.get((ns, queue))
        if params is None:
            sock.send(verdict_message(queue, packet_id, NF_ACCEPT))
            return
        if params.loss_pct and self.rng.random() * 100 < params.loss_pct:
            sock.send(verdict_message(queue, packet_id, NF_DROP))
            return
        delay = params.delay_ms
        if params.jitter_ms:
            delay += self.rng.uniform(-params.jitter_ms, params.jitter_ms)
        # never reorder a queue: TCP takes reordering for loss
        release = max(now + max(delay, 0.0) / 1000, self.last_release.get((ns, queue), 0.0))
        self.last_release[(ns, queue)] = release
        if release <= now:
            sock.send(verdict_message(queue, packet_id, NF_ACCEPT))
            return
        self.counter += 1
        heapq.heappush(self.pending, (release, self.counter, ns, queue, packet_id))

    def _release_due(self) -> None:
        now = time.monotonic()
        while self.pending and self.pending[0][0] <= now:
            _release, _n, ns, queue, packet_id = heapq.heappop(self.pending)
            sock = self.sockets.get(ns)
            if sock is not None:
                try:
                    sock.send(verdict_message(queue, packet_id, NF_ACCEPT))
                except OSError as exc:
                    log.debug("%s queue %d: verdict lost: %s", ns, queue, exc)

    def run(self) -> None:
        # signals wake the select at once (set_wakeup_fd), so a reload is not a second late
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        self.selector.register(wake_r, selectors.EVENT_READ, None)
        while not self.stopping:
            if self.reload_wanted:
                self.reload()
            timeout = 1.0
            if self.pending:
                timeout = max(0.0, min(timeout, self.pending[0][0] - time.monotonic()))
            for key, _events in self.selector.select(timeout):
                if key.data is None:
                    wake_r.recv(512)
                else:
                    self._receive(key.data, key.fileobj)  # type: ignore[arg-type]
            self._release_due()
        for sock in self.sockets.values():
            sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dtnlab-impaird", description=__doc__)
    parser.add_argument("config", type=Path)
    parser.add_argument("--pid-file", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s impaird: %(message)s")
    impairer = Impairer(args.config)

    def on_hup(_signum: int, _frame: object) -> None:
        impairer.reload_wanted = True

    def on_term(_signum: int, _frame: object) -> None:
        impairer.stopping = True

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    impairer.reload()
    if args.pid_file:
        args.pid_file.write_text(f"{os.getpid()}\n")
    impairer.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
