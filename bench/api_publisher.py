"""Telemetry load for the API benchmark: every device of a lab on its own MQTT connection.

Run as `python bench/api_publisher.py LAB_DIR RATE SECONDS`: publishes RATE valid telemetry
messages per second in total (QoS 0, round robin over the devices) for SECONDS, then prints
how many it sent as JSON.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TICK_S = 0.01
VARIANTS = 8  # precomputed value sets per device, cycled: cheap and still moving


def value_sets(metrics: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """Valid values inside each metric's normal band."""
    sets = []
    for _ in range(VARIANTS):
        values: dict[str, Any] = {}
        for name, m in metrics.items():
            lo, hi = m.normal or m.warning or (m.min or 0.0, m.max or 1.0)
            mid = (lo + hi) / 2
            if m.type == "float":
                values[name] = round(mid + rng.uniform(-0.2, 0.2) * (hi - lo), 3)
            elif m.type == "int":
                values[name] = int(mid)
            elif m.type == "bool":
                values[name] = True
            else:
                values[name] = "running"
        sets.append(values)
    return sets


async def publish(lab_dir: Path, rate: float, seconds: float) -> dict[str, float]:
    from dtnlab.runtime.emulator.mqtt import MqttConnection, open_connection
    from dtnlab.runtime.labfiles import load_lab

    lab = load_lab(lab_dir)
    broker = lab.runtime.broker
    rng = random.Random(1)
    gate = asyncio.Semaphore(100)
    devices = []

    async def connect(twin_id: str) -> None:
        twin = lab.twins[twin_id]
        conn = MqttConnection(f"bench-{twin_id}", twin.mqtt_user, lab.password(twin.mqtt_user))
        await open_connection(conn, broker.host, broker.port, gate=gate)
        devices.append((conn, twin.topics.telemetry, value_sets(twin.metrics, rng)))

    await asyncio.gather(*(connect(t) for t in lab.twins))
    sent = dropped = 0
    start = time.monotonic()
    seq = 0
    dumps = orjson.dumps
    while (now := time.monotonic()) - start < seconds:
        due = int((now - start) * rate) - sent - dropped
        ts = time.time()
        for _ in range(due):
            conn, topic, sets = devices[seq % len(devices)]
            seq += 1
            if conn.paused:
                dropped += 1
                continue
            conn.publish(topic, dumps({"ts": ts, "seq": seq, "values": sets[seq % VARIANTS]}))
            sent += 1
        await asyncio.sleep(TICK_S)
    elapsed = time.monotonic() - start
    for conn, _, _ in devices:
        conn.disconnect()
    return {"devices": len(devices), "sent": sent, "dropped": dropped,
            "rate": round(sent / elapsed, 1)}


def main() -> int:
    lab_dir, rate, seconds = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(asyncio.run(publish(lab_dir, rate, seconds))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
