"""Ingest benchmark: real Mosquitto (a generated lab's config) -> twin engine -> SQLite/PostgreSQL.

    python bench/ingest_bench.py            # full run (about 3 minutes)
    python bench/ingest_bench.py --quick    # short run (about 1 minute)

(1) throughput: raw-socket publisher processes send pre-built telemetry of the demo plant's
58 devices (one connection each) at a target rate; beside the engine, a bare paho subscriber
that only counts gives the ceiling of a Python MQTT consumer here. (2) latency: publish ->
twin state and publish -> stored, p50/p99, at 1,000 and 5,000 msg/s.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import orjson  # noqa: E402
import paho.mqtt.client as paho  # noqa: E402
import psycopg  # noqa: E402

from dtnlab.generators import writer  # noqa: E402
from dtnlab.generators.pipeline import render_lab  # noqa: E402
from dtnlab.inventory.source import FileSource  # noqa: E402
from dtnlab.runtime.engine import Engine, EngineConfig  # noqa: E402
from dtnlab.runtime.labfiles import LabFiles, load_lab  # noqa: E402
from dtnlab.runtime.mqtt_client import MqttClient  # noqa: E402
from dtnlab.runtime.storage import PostgresStore, SqliteStore, Store  # noqa: E402
from tests.broker import Broker, with_free_ports  # noqa: E402

PUBLISHER = Path(__file__).resolve().parent / "ingest_publisher.py"
INVENTORY = REPO / "labs" / "demo-plant" / "inventory.yaml"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Result:
    name: str
    qos: int
    offered: float
    state_rate: float
    stored_rate: float | None
    sent: int
    received: int
    stored: int | None
    cpu_us: float = 0.0
    broker: float = 0.0

    def __post_init__(self) -> None:
        self.cpu_us, self.broker = CPU["consumer"], CPU["broker"]

    def line(self) -> str:
        stored = f"{self.stored_rate:>9,.0f}" if self.stored_rate is not None else f"{'-':>9}"
        loss = self.sent - self.received
        return (f"{self.name:<28}{self.qos:>4}{self.offered:>10,.0f}{self.state_rate:>10,.0f}"
                f"{stored}{self.sent:>10,}{loss:>9,}{self.cpu_us:>8.1f}{self.broker:>7.0%}"
                f"{os.getloadavg()[0]:>6.1f}")


def make_lab(folder: Path) -> LabFiles:
    lab = with_free_ports(FileSource(INVENTORY).load())
    rendered = render_lab(lab, folder)
    writer.write(folder, rendered.files, rendered.inventory_digest)
    return load_lab(folder)


def device_specs(lab: LabFiles) -> list[dict[str, Any]]:
    return [{"id": t.id, "user": t.mqtt_user, "password": lab.password(t.mqtt_user),
             "topic": t.topics.telemetry,
             "metrics": {n: m.model_dump() for n, m in t.metrics.items()}}
            for t in lab.twins.values()]


def publish(lab: LabFiles, workdir: Path, *, qos: int, rate: float, duration: float,
            processes: int, live: bool = False) -> tuple[float, Callable[[], int]]:
    """Start publisher processes; return (start time, wait() -> messages sent)."""
    devices = device_specs(lab)
    start_at = time.time() + 1.5
    procs = []
    for k in range(processes):
        spec = {"host": lab.runtime.broker.host, "port": lab.runtime.broker.port, "qos": qos,
                "rate": rate / processes, "duration": duration, "start_at": start_at,
                "devices": devices[k::processes], "live": live, "seed": k}
        path = workdir / f"publisher-{k}-{uuid.uuid4().hex[:6]}.json"
        path.write_text(json.dumps(spec))
        procs.append(subprocess.Popen([sys.executable, str(PUBLISHER), str(path)],
                                      stdout=subprocess.PIPE))

    def wait() -> int:
        sent = acked = 0
        for p in procs:
            out, _ = p.communicate(timeout=duration + 60)
            result = json.loads(out)
            sent, acked = sent + result["sent"], acked + result["acked"]
        ACKED[0] = acked
        return sent

    return start_at, wait


BROKER_PID = [0]
ACKED = [0]  # QoS 1 messages the broker acknowledged to the publishers, last run
CPU = {"consumer": 0.0, "broker": 0.0}


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def broker_cpu() -> float:
    try:
        fields = Path(f"/proc/{BROKER_PID[0]}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(counter: Callable[[], int], stored: Callable[[], int] | None, start_at: float,
            duration: float, wait: Callable[[], int]) -> tuple[float, float | None, int, int, int]:
    """Rates over the steady part of the run, then totals once everything has drained.

    CPU["consumer"]: this process's CPU (us) per message over the whole run, drain included;
    CPU["broker"]: the broker's share of one core while publishing."""
    warm = min(1.0, duration / 4)
    time.sleep(max(0.0, start_at - time.time()))
    u_start = own_cpu()
    time.sleep(max(0.0, start_at + warm - time.time()))
    t0, c0, s0 = time.perf_counter(), counter(), stored() if stored else 0
    b0 = broker_cpu()
    time.sleep(max(0.0, start_at + duration - time.time()))
    t1, c1, s1 = time.perf_counter(), counter(), stored() if stored else 0
    CPU["broker"] = (broker_cpu() - b0) / (t1 - t0)
    sent = wait()
    last, still = -1, time.monotonic()
    while time.monotonic() - still < 1.0:  # drained when nothing moved for a second
        now = counter() + (stored() if stored else 0)
        if now != last:
            last, still = now, time.monotonic()
        time.sleep(0.05)
    CPU["consumer"] = (own_cpu() - u_start) / max(counter(), 1) * 1e6
    dt = t1 - t0
    return ((c1 - c0) / dt, (s1 - s0) / dt if stored else None, sent, counter(),
            stored() if stored else 0)


def bare(lab: LabFiles, workdir: Path, qos: int, args: argparse.Namespace,
         buffered: bool) -> Result:
    """A paho subscriber that only counts: the ceiling of a Python consumer on this machine."""
    seen = [0]

    def on_message(client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        seen[0] += 1

    client = MqttClient.for_lab(lab, lab.runtime.runtime_user, f"bench-bare-{uuid.uuid4().hex}",
                                fast_read=buffered, session_expiry_s=0)
    client.paho.on_message = on_message
    if buffered:
        def count(item: tuple[str, bytes]) -> None:
            seen[0] += 1

        client.raw_sink = count
    ent = lab.runtime.enterprise
    client.subscribe({f"{ent}/+/+/+/+/+/telemetry": qos})
    client.start()
    rate = args.rate_qos1 if qos else args.rate
    start_at, wait = publish(lab, workdir, qos=qos, rate=rate, duration=args.duration,
                             processes=args.publishers)
    state_rate, _, sent, received, _ = measure(lambda: seen[0], None,
                                              start_at, args.duration, wait)
    client.stop()
    name = "paho + fast reader (count)" if buffered else "bare paho subscriber"
    return Result(name, qos, rate, state_rate, None, sent, received, None)


def new_store(kind: str, workdir: Path) -> tuple[Store, Callable[[], None]]:
    if kind == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:6]}.sqlite3"
        return SqliteStore(path), lambda: None
    name = f"dtnlab_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())

    return PostgresStore(f"postgresql://postgres@127.0.0.1:5432/{name}"), drop


def start_engine(lab: LabFiles, store: Store, qos: int) -> Engine:
    client_id = f"bench-engine-{uuid.uuid4().hex[:8]}"
    client = MqttClient.for_lab(lab, lab.runtime.runtime_user, client_id, session_expiry_s=0)
    engine = Engine(lab, EngineConfig(client_id=client_id, qos=qos), store=store, client=client)
    engine.start()
    return engine


def engine_run(lab: LabFiles, workdir: Path, kind: str, qos: int,
               args: argparse.Namespace) -> Result:
    store, drop = new_store(kind, workdir)
    engine = start_engine(lab, store, qos)
    rate = args.rate_qos1 if qos else args.rate
    try:
        start_at, wait = publish(lab, workdir, qos=qos, rate=rate, duration=args.duration,
                                 processes=args.publishers)
        state_rate, stored_rate, sent, received, stored = measure(
            lambda: engine.valid, lambda: engine.writer.written_msgs, start_at, args.duration,
            wait)
        engine.writer.flush(30)
        stored = engine.writer.written_msgs
    finally:
        engine.stop()
        drop()
    return Result(f"engine + {kind}", qos, rate, state_rate, stored_rate, sent, received,
                  stored)


class FakeBroker:
    """Just enough of a broker (MQTT v5 CONNACK, SUBACK) to stream pre-built PUBLISH packets
    into one client: the engine's own cost, with no broker or publisher on the CPU."""

    def __init__(self, packets: bytes) -> None:
        self.packets = packets
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.go = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            conn.recv(65536)  # CONNECT
            conn.sendall(bytes([0x20, 3, 0, 0, 0]))
            sub = conn.recv(65536)  # SUBSCRIBE: fixed header, packet id, ...
            pid = sub[2:4] if sub[1] < 128 else sub[3:5]
            conn.sendall(bytes([0x90, 6]) + pid + bytes([0, 1, 1, 1]))
            self.go.wait()
            conn.sendall(self.packets)
            while conn.recv(65536):  # until the client goes
                pass
        self.server.close()


def pipeline_run(lab: LabFiles, workdir: Path, kind: str, count: int) -> str:
    """Raw socket -> fast reader -> validation and twin state -> storage, in this process."""
    sys.path.insert(0, str(PUBLISHER.parent))
    from ingest_publisher import publish_packet, sample_values

    rng = random.Random(7)
    twins = list(lab.twins.values())
    chunks = []
    for i in range(count):
        t = twins[i % len(twins)]
        doc = {"ts": time.time(), "seq": i,
               "values": sample_values({n: m.model_dump() for n, m in t.metrics.items()}, rng)}
        chunks.append(publish_packet(t.topics.telemetry, b"\x00" + orjson.dumps(doc), 0))
    fake = FakeBroker(b"".join(chunks))
    store, drop = new_store(kind, workdir)
    client = MqttClient("bench-pipeline", "127.0.0.1", fake.port, session_expiry_s=0)
    engine = Engine(lab, EngineConfig(client_id="bench-pipeline"), store=store, client=client)
    try:
        engine.start()
        u0, w0 = own_cpu(), time.perf_counter()
        fake.go.set()
        while engine.valid < count and time.perf_counter() - w0 < 120:
            time.sleep(0.005)
        w_state = time.perf_counter() - w0
        engine.writer.flush(120)
        w_stored, cpu = time.perf_counter() - w0, own_cpu() - u0
    finally:
        engine.stop()
        drop()
    return (f"{kind:<10}{count:>10,}{count / w_state:>11,.0f}{count / w_stored:>11,.0f}"
            f"{cpu / count * 1e6:>9.1f}{count / cpu:>12,.0f}")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def latency_run(lab: LabFiles, workdir: Path, kind: str, rate: float,
                args: argparse.Namespace) -> str:
    store, drop = new_store(kind, workdir)
    engine = start_engine(lab, store, 1)
    state: list[float] = []
    stored: list[float] = []
    try:
        engine.latency_sink, engine.writer.latency_sink = state, stored
        start_at, wait = publish(lab, workdir, qos=1, rate=rate, duration=args.latency_duration,
                                 processes=1 if rate <= 1000 else 2, live=True)
        wait()
        engine.writer.flush(30)
    finally:
        engine.stop()
        drop()
    return (f"{kind:<10}{rate:>8,.0f}{len(state):>9,}{pct(state, 0.5):>11.1f}"
            f"{pct(state, 0.99):>11.1f}{pct(stored, 0.5):>12.1f}{pct(stored, 0.99):>12.1f}")


def cpu_line() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} cores, load {load[0]:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs, fewer cases")
    parser.add_argument("--duration", type=float, help="seconds per throughput run")
    parser.add_argument("--latency-duration", type=float, help="seconds per latency run")
    parser.add_argument("--rate", type=float, default=60_000,
                        help="offered msg/s in QoS 0 throughput runs (default: %(default)s)")
    parser.add_argument("--rate-qos1", type=float, default=30_000,
                        help="offered msg/s in QoS 1 throughput runs: the broker drops QoS 1 "
                             "too once a client's queue is full (default: %(default)s)")
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    args.duration = args.duration or (4.0 if args.quick else 10.0)
    args.latency_duration = args.latency_duration or (3.0 if args.quick else 8.0)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    kinds = ["sqlite"] if args.no_postgres else ["sqlite", "postgres"]
    with tempfile.TemporaryDirectory(prefix="dtn-ingest-bench-") as tmp:
        workdir = Path(tmp)
        lab = make_lab(workdir / "lab")
        with Broker(lab.root) as broker:
            assert broker.process is not None
            BROKER_PID[0] = broker.process.pid
            print(f"ingest bench: lab {lab.runtime.lab}, {len(lab.twins)} devices, "
                  f"{args.publishers} publisher processes, {cpu_line()}, "
                  f"paho-mqtt {metadata.version('paho-mqtt')}")
            print(f"\n{'pipeline':<10}{'messages':>10}{'state/s':>11}{'stored/s':>11}"
                  f"{'us/msg':>9}{'msg/cpu-s':>12}   (no broker: the engine process alone)")
            for kind in kinds:
                print(pipeline_run(lab, workdir, kind, 50_000 if args.quick else 200_000),
                      flush=True)
            print(f"\n{'consumer':<28}{'qos':>4}{'offered':>10}{'state/s':>10}{'stored/s':>9}"
                  f"{'sent':>10}{'lost':>9}{'us/msg':>8}{'broker':>7}{'load':>6}")
            cases: list[Callable[[], Result]] = []
            for qos in (0, 1):
                cases.append(lambda q=qos: bare(lab, workdir, q, args, False))
                if not args.quick or qos == 0:
                    cases.append(lambda q=qos: bare(lab, workdir, q, args, True))
                for kind in kinds:
                    cases.append(lambda q=qos, k=kind: engine_run(lab, workdir, k, q, args))
            for case in cases:
                print(case().line(), flush=True)
            print(f"\n{'latency':<10}{'msg/s':>8}{'samples':>9}{'state p50':>11}{'state p99':>11}"
                  f"{'stored p50':>12}{'stored p99':>12}   (ms, QoS 1)")
            for kind in kinds:
                for rate in (1000, 5000):
                    print(latency_run(lab, workdir, kind, rate, args), flush=True)
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
