"""Emulator benchmark: N devices, each its own MQTT connection, against a real Mosquitto.

Generates a synthetic lab of N twins (sensors every 5 s, switches every 10 s), starts the lab's
broker and twin engine (SQLite storage) as the local provider does, then the emulator processes,
and measures: time until every device is connected, RSS and CPU of the emulators, the engine and
the broker over a steady window, the telemetry rate a subscriber sees, the twins' states, and
the time for every device to come back after the broker is killed and restarted. Baseline in
the same script: the same devices on paho-mqtt in one process (bench/emulators_paho.py).

Run: python bench/emulators_bench.py [--quick] [--devices 10000] [--shards 2] [--window 30]
Writes bench/results/emulators.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.synthetic import synthetic_inventory  # noqa: E402
from dtnlab.generators import writer  # noqa: E402
from dtnlab.generators.pipeline import render_lab  # noqa: E402
from dtnlab.inventory.source import FileSource  # noqa: E402
from dtnlab.runtime.emulator.control import STATUS_DIR  # noqa: E402
from dtnlab.runtime.emulator.mqtt import MqttConnection, open_connection  # noqa: E402
from dtnlab.runtime.emulator.spec import read_password, read_runtime  # noqa: E402
from dtnlab.runtime.providers.broker import (  # noqa: E402
    broker_account,
    broker_argv,
    stage_broker,
)
from dtnlab.runtime.providers.nodes import port_open, runtime_argv  # noqa: E402
from dtnlab.runtime.providers.states import engine_status  # noqa: E402
from dtnlab.runtime.providers.supervisor import raise_fd_limit  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_lab(devices: int, root: Path) -> Path:
    data: dict[str, Any] = synthetic_inventory(devices)
    data["dtnlab"] = {"lab": "emubench", "mqtt_port": free_port(), "mqtts_port": free_port()}
    inventory = root / "inventory.json"
    inventory.write_bytes(orjson.dumps(data))
    lab = FileSource(inventory).load()
    folder = root / "emubench"
    rendered = render_lab(lab, folder)
    writer.write(folder, rendered.files, rendered.inventory_digest)
    return folder


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def connected(folder: Path) -> int:
    total = 0
    for path in (folder / STATUS_DIR).glob("*.json"):
        try:
            total += int(json.loads(path.read_text())["connected"])
        except (OSError, ValueError, KeyError):
            pass
    return total


def wait_connected(folder: Path, devices: int, procs: list[subprocess.Popen[bytes]],
                   timeout: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if connected(folder) >= devices:
            return time.monotonic() - start
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("an emulator process exited; see its log")
        time.sleep(0.1)
    return None


class TelemetryCounter(threading.Thread):
    """Counts telemetry messages as the runtime user, in its own event loop."""

    def __init__(self, folder: Path) -> None:
        super().__init__(daemon=True)
        self.folder = folder
        self.count = 0
        self.ready = threading.Event()

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        runtime = read_runtime(self.folder)

        def on_message(topic: str, payload: bytes) -> None:
            self.count += 1

        conn = MqttConnection("bench-counter", runtime.runtime_user,
                              read_password(self.folder, runtime.runtime_user),
                              on_message=on_message)
        await open_connection(conn, runtime.broker.host, runtime.broker.port)
        await conn.subscribe([(f"{runtime.enterprise}/+/+/+/+/+/telemetry", 0)])
        self.ready.set()
        while not conn.closed.done():
            conn.keep_alive(time.monotonic())
            await asyncio.sleep(1)


def start_broker(folder: Path, log: Path) -> subprocess.Popen[bytes]:
    account = broker_account()
    cwd = stage_broker(folder, account)
    runtime = read_runtime(folder)
    with log.open("ab") as out:
        proc = subprocess.Popen(broker_argv(), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                user=account.uid if account else None,
                                group=account.gid if account else None,
                                extra_groups=[] if account else None)
    while not port_open("127.0.0.1", runtime.broker.port):
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited: {log.read_text()[-2000:]}")
        time.sleep(0.05)
    return proc


def bench(devices: int, shards: int, window: float, keep: bool) -> dict[str, Any]:
    limit = raise_fd_limit()
    root = Path(tempfile.mkdtemp(prefix="dtn-emubench-"))
    t = time.perf_counter()
    folder = make_lab(devices, root)
    twins = len(read_runtime(folder).twins)
    result: dict[str, Any] = {"devices": twins, "shards": shards, "fd_limit": limit,
                              "generate_s": round(time.perf_counter() - t, 2)}
    print(f"lab of {twins} twins generated in {result['generate_s']}s under {root}")
    logs = folder / "run" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    broker = start_broker(folder, logs / "broker.log")
    emulators: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "DTN_LOG_LEVEL": "WARNING"}
    with (logs / "engine.log").open("ab") as out:
        engine = subprocess.Popen(runtime_argv("engine", folder), stdout=out,
                                  stderr=subprocess.STDOUT, env=env)
    try:
        for k in range(shards):
            argv = runtime_argv("emulator", folder, "--shard", f"{k}/{shards}", "--name",
                                f"emulator-{k}")
            with (logs / f"emulator-{k}.log").open("ab") as out:
                emulators.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                                  env=env))
        broker_ticks = cpu_ticks(broker.pid)
        took = wait_connected(folder, twins, emulators, timeout=300)
        # wall time depends on what else the machine runs; CPU seconds much less
        result["connect_cpu_s"] = {
            "emulators": round(sum(cpu_ticks(p.pid) for p in emulators) / TICKS, 2),
            "broker": round((cpu_ticks(broker.pid) - broker_ticks) / TICKS, 2)}
        result["load_average"] = round(os.getloadavg()[0], 1)
        result["connect_all_s"] = round(took, 2) if took is not None else None
        result["connect_per_s"] = round(twins / took) if took else None
        result["connect_after_load_s"] = max(  # each process from its devices loaded
            json.loads(p.read_text())["connected_in_s"] or 0.0
            for p in (folder / STATUS_DIR).glob("*.json"))
        print(f"all {twins} devices connected in {took:.2f}s from process start "
              f"({result['connect_after_load_s']}s after loading the twin files; CPU "
              f"{result['connect_cpu_s']['emulators']}s emulators incl. start-up, "
              f"{result['connect_cpu_s']['broker']}s broker; load average "
              f"{result['load_average']:.1f} on {os.cpu_count()} cores)")
        counter = TelemetryCounter(folder)
        counter.start()
        counter.ready.wait(10)
        time.sleep(3.0)  # let the first telemetry period pass
        pids = {"broker": broker.pid, "engine": engine.pid,
                **{f"emulator-{k}": p.pid for k, p in enumerate(emulators)}}
        before = {n: cpu_ticks(p) for n, p in pids.items()}
        count_before, t0 = counter.count, time.monotonic()
        time.sleep(window)
        elapsed = time.monotonic() - t0
        cpu = {n: round((cpu_ticks(p) - before[n]) / TICKS / elapsed * 100, 1)
               for n, p in pids.items()}
        rss = {n: round(rss_mb(p), 1) for n, p in pids.items()}
        rate = (counter.count - count_before) / elapsed
        expected = sum(1 / json.loads(p.read_text())["period_s"]
                       for p in (folder / "twins").glob("*.json"))
        result.update({"window_s": round(elapsed, 1), "cpu_percent": cpu, "rss_mb": rss,
                       "telemetry_per_s": round(rate), "expected_per_s": round(expected),
                       "emulators_cpu_percent": round(sum(
                           v for n, v in cpu.items() if n.startswith("emulator")), 1),
                       "emulators_rss_mb": round(sum(
                           v for n, v in rss.items() if n.startswith("emulator")), 1),
                       "twin_states": {k: v for k, v in
                                       (engine_status(folder) or {}).get("states", {}).items()
                                       if v}})
        print(f"steady {elapsed:.0f}s: telemetry {rate:.0f}/s (expected {expected:.0f}/s); "
              f"twins {result['twin_states']}")
        for name in pids:
            print(f"  {name:<12} CPU {cpu[name]:>5.1f}%  RSS {rss[name]:>7.1f} MB")
        # broker restart: kill it hard, start it again, time until every device is back
        broker.kill()
        broker.wait()
        time.sleep(1.0)
        t = time.monotonic()
        broker = start_broker(folder, logs / "broker.log")
        time.sleep(1.5)  # the status files still count the old connections for up to 1 s
        back = wait_connected(folder, twins, emulators, timeout=300)
        result["reconnect_after_broker_restart_s"] = (round(time.monotonic() - t, 2)
                                                      if back is not None else None)
        print(f"broker killed and restarted: all devices back in "
              f"{result['reconnect_after_broker_restart_s']}s")
    finally:
        for proc in [*emulators, engine]:
            proc.send_signal(signal.SIGTERM)
        for proc in [*emulators, engine]:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        broker.terminate()
        broker.wait(30)
        if not keep:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    result["bench_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                        / 1024, 1)
    return result


def paho_baseline(devices: int, window: float) -> dict[str, Any]:
    """bench/emulators_paho.py on the same number of devices, in a process of its own."""
    out = subprocess.run([sys.executable, str(Path(__file__).with_name("emulators_paho.py")),
                          "--devices", str(devices), "--window", str(window)],
                         capture_output=True, text=True, check=True, timeout=900)
    return dict(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="1,000 devices, 10 s window")
    parser.add_argument("--shards", type=int, default=0,
                        help="emulator processes (default: as the local provider picks)")
    parser.add_argument("--window", type=float, default=30.0, help="steady-state seconds")
    parser.add_argument("--keep", action="store_true", help="keep the lab folder and logs")
    args = parser.parse_args()
    devices = 1000 if args.quick else args.devices
    window = min(args.window, 10.0) if args.quick else args.window
    from dtnlab.runtime.providers.nodes import default_shards

    shards = args.shards or default_shards(devices)
    result = bench(devices, shards, window, args.keep)
    result["paho_baseline"] = paho_baseline(devices, window)
    lean, paho = result["emulators_rss_mb"], result["paho_baseline"]["rss_mb"]
    print(f"baseline, the same {devices} devices on paho-mqtt in one process: connected in "
          f"{result['paho_baseline']['connect_all_s']}s, RSS {paho:.0f} MB vs {lean:.0f} MB "
          f"({paho / lean:.1f}x), CPU {result['paho_baseline']['cpu_percent']}% vs "
          f"{result['emulators_cpu_percent']}%")
    out = REPO / "bench" / "results" / f"emulators{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
