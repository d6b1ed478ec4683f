"""Why the emulators have their own MQTT client: the same devices on paho-mqtt, measured.

N devices in one process: paho 2.x clients driven from one asyncio loop through paho's socket
callbacks (no thread per client), each publishing the same telemetry at its period, against the
same real Mosquitto. Prints connect time, RSS and CPU next to what `emulators_bench.py` measures
for the lean asyncio client.

Run: python bench/emulators_paho.py [--devices 5000] [--window 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.emulators_bench import TICKS, cpu_ticks, make_lab, rss_mb, start_broker  # noqa: E402
from dtnlab.runtime.emulator.signals import make_signal  # noqa: E402
from dtnlab.runtime.emulator.spec import (  # noqa: E402
    read_password,
    read_runtime,
    select_devices,
)
from dtnlab.runtime.providers.supervisor import raise_fd_limit  # noqa: E402


class PahoDevice:
    """One paho client whose socket is watched by the asyncio loop (paho's loop_asyncio idea)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, profile: Any, password: str,
                 rng: random.Random) -> None:
        self.loop, self.profile = loop, profile
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=profile.id,
                                  clean_session=False)
        self.client.username_pw_set(profile.mqtt_user, password)
        self.client.will_set(profile.status, b'{"state":"offline"}', 1, True)
        self.client.on_socket_open = self._open
        self.client.on_socket_close = self._close
        self.client.on_socket_register_write = self._want_write
        self.client.on_socket_unregister_write = self._done_write
        self.client.on_connect = self._on_connect
        self.connected = False
        self.signals = {n: make_signal(m, rng) for n, m in profile.metrics.items()}
        self.seq = 0

    def _open(self, client: paho.Client, userdata: Any, sock: socket.socket) -> None:
        self.loop.add_reader(sock, client.loop_read)

    def _close(self, client: paho.Client, userdata: Any, sock: socket.socket) -> None:
        self.loop.remove_reader(sock)

    def _want_write(self, client: paho.Client, userdata: Any, sock: socket.socket) -> None:
        self.loop.add_writer(sock, client.loop_write)

    def _done_write(self, client: paho.Client, userdata: Any, sock: socket.socket) -> None:
        self.loop.remove_writer(sock)

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        self.connected = True
        client.publish(self.profile.status, b'{"state":"online"}', 1, True)
        client.subscribe(self.profile.command, 1)
        self.loop.call_later(random.uniform(0, self.profile.period_s), self._tick)

    def _tick(self) -> None:
        now = time.time()
        values = {n: s.sample(now, self.profile.period_s) for n, s in self.signals.items()}
        self.client.publish(self.profile.telemetry,
                            orjson.dumps({"ts": now, "seq": self.seq, "values": values}))
        self.seq += 1
        if self.client.loop_misc() == MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.loop.call_later(self.profile.period_s, self._tick)


async def run(folder: Path, window: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    runtime = read_runtime(folder)
    profiles = select_devices(folder, runtime)
    rng = random.Random(1)
    start = time.monotonic()
    devices = [PahoDevice(loop, p, read_password(folder, p.mqtt_user), rng) for p in profiles]
    for device in devices:  # paho's connect() blocks until the TCP handshake is done
        device.client.connect(runtime.broker.host, runtime.broker.port, keepalive=60)
        await asyncio.sleep(0)
    while not all(d.connected for d in devices):
        await asyncio.sleep(0.05)
    connect_s = time.monotonic() - start
    await asyncio.sleep(3.0)
    before, t0 = cpu_ticks(os.getpid()), time.monotonic()
    sent = sum(d.seq for d in devices)
    await asyncio.sleep(window)
    elapsed = time.monotonic() - t0
    cpu = (cpu_ticks(os.getpid()) - before) / TICKS / elapsed * 100
    result = {"devices": len(devices), "connect_all_s": round(connect_s, 2),
              "cpu_percent": round(cpu, 1), "rss_mb": round(rss_mb(os.getpid()), 1),
              "telemetry_per_s": round((sum(d.seq for d in devices) - sent) / elapsed)}
    for device in devices:
        device.client.disconnect()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--window", type=float, default=20.0)
    args = parser.parse_args()
    raise_fd_limit()
    root = Path(tempfile.mkdtemp(prefix="dtn-pahobench-"))
    folder = make_lab(args.devices, root)
    broker = start_broker(folder, root / "broker.log")
    try:
        result = asyncio.run(run(folder, args.window))
    finally:
        broker.terminate()
        broker.wait(30)
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
