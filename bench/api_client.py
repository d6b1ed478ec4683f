"""A lean open-loop HTTP/1.1 load client on asyncio streams, so the client is not the bottleneck.

httpx on this 2-core machine spent more time per request than the API did; raw keep-alive
connections cost the client about 0.1 ms a request.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Callable
from typing import Any


class Connection:
    """One keep-alive connection; GET requests one at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 headers: bytes) -> None:
        self.reader, self.writer, self.headers = reader, writer, headers

    @classmethod
    async def open(cls, host: str, port: int, headers: dict[str, str]) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        extra = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items())
        return cls(reader, writer, extra.encode())

    async def get(self, path: str) -> tuple[int, bytes]:
        self.writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self.headers + b"\r\n")
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else 0.0


async def open_loop(host: str, port: int, headers: dict[str, str],
                    routes: dict[str, Callable[[random.Random], str]], rate: float,
                    seconds: float, connections: int = 32) -> dict[str, Any]:
    """Request i is due at t0 + i/rate, routes taken in turn; its latency counts from when it
    was due, so a slow server cannot hide behind a client that waits for it."""
    rng = random.Random(7)
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await Connection.open(host, port, headers))
    names = list(routes)
    latencies: dict[str, list[float]] = {name: [] for name in names}
    errors = dict.fromkeys(names, 0)
    worst: dict[int, float] = {}  # second of the run -> its slowest request (ms)

    async def one(name: str, path: str, due: float) -> None:
        conn = await idle.get()
        try:
            status, _ = await conn.get(path)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status = 0
            conn = await Connection.open(host, port, headers)
        idle.put_nowait(conn)
        ms = (time.perf_counter() - due) * 1000
        latencies[name].append(ms)
        second = int(due - t0)
        worst[second] = max(worst.get(second, 0.0), ms)
        errors[name] += status != 200

    tasks = []
    total = int(rate * seconds)
    t0 = time.perf_counter()
    for i in range(total):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        name = names[i % len(names)]
        tasks.append(asyncio.create_task(one(name, routes[name](rng), due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    while not idle.empty():
        idle.get_nowait().close()
    result: dict[str, Any] = {"requests": total, "achieved_rps": round(total / elapsed, 1),
                              "worst_ms_by_second": [round(worst.get(s, 0.0), 1)
                                                     for s in range(int(seconds))]}
    for name, values in latencies.items():
        result[name] = {"n": len(values), "errors": errors[name],
                        **{f"p{q}": round(percentile(values, q), 2) for q in (50, 95, 99)},
                        "max": round(max(values, default=0.0), 2)}
    return result
