"""A small lab for runtime tests: nine demo-plant devices, short periods, free ports."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from dtnlab.generators import writer
from dtnlab.generators.pipeline import render_lab
from dtnlab.inventory.source import FileSource
from dtnlab.runtime.emulator.control import STATUS_DIR, applied_faults, request_fault
from dtnlab.runtime.labfiles import LabFiles, load_lab
from tests.broker import free_port
from tests.conftest import DEMO_INVENTORY
from tests.waiting import wait_for

# one of each kind: float, bool, str and int metrics, a switch, a gateway, and the mobile AGV
# with a device in each of the two cells of its line (a cell exists where a device stands)
DEVICES = ("AAR-PROC-GW-01", "AAR-L1-SW-01", "AAR-L1-C1-PLC-01", "AAR-L1-C1-TT-01",
           "AAR-L1-C1-VT-01", "AAR-L1-C1-M-01", "AAR-AGV-01", "AAR-L3-C1-TT-01",
           "AAR-L3-C2-HT-01")
SENSOR = "aar-l1-c1-tt-01"  # temperature: normal [15, 30], warning [10, 35], min -50, max 150
PLC = "aar-l1-c1-plc-01"  # cycle_time, cpu_load (float), running (bool)
MOTOR = "aar-l1-c1-m-01"  # speed, current (float), state (str)
AGV = "aar-agv-01"  # battery, speed, x, y; moves between the cells of line 3
GATEWAY = "aar-proc-gw-01"  # messages_forwarded (int)


def small_inventory(period_s: float = 0.2, heartbeat_s: float = 1.5, lab: str = "mini",
                    telemetry_qos: int = 0) -> dict[str, Any]:
    """The demo plant's NetBox-shaped inventory cut down to DEVICES, on free ports.

    A config context of the highest weight sets every device's period and heartbeat.
    """
    data = yaml.safe_load(DEMO_INVENTORY.read_text())
    devices = [d for d in data["dcim.devices"] if d["name"] in DEVICES]
    assert len(devices) == len(DEVICES)
    kept = {d["id"] for d in devices}
    interfaces = [i for i in data["dcim.interfaces"] if i["device"]["id"] in kept]
    ports = {i["id"] for i in interfaces}
    data["dcim.devices"], data["dcim.interfaces"] = devices, interfaces
    data["dcim.cables"] = [c for c in data["dcim.cables"] if all(
        t["object_id"] in ports for t in c["a_terminations"] + c["b_terminations"])]
    data["ipam.ip-addresses"] = [a for a in data["ipam.ip-addresses"]
                                 if a.get("assigned_object_id") in ports]
    data["extras.config-contexts"].append({
        "id": 999, "name": "test periods", "weight": 9000, "is_active": True,
        "data": {"dtnlab": {"period_s": period_s, "heartbeat_s": heartbeat_s}}})
    data["dtnlab"] = {**data["dtnlab"], "lab": lab, "mqtt_port": free_port(),
                      "mqtts_port": free_port(), "api_port": free_port(),
                      "telemetry_qos": telemetry_qos}
    return data


def write_inventory(folder: Path, **options: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "inventory.yaml"
    path.write_text(yaml.safe_dump(small_inventory(**options), sort_keys=False))
    return path


def generate_small_lab(folder: Path, **options: Any) -> Path:
    """Generate the small lab with the real generators; return its folder."""
    lab = FileSource(write_inventory(folder, **options)).load()
    lab_dir = folder / "labs" / lab.name
    rendered = render_lab(lab, lab_dir)
    writer.write(lab_dir, rendered.files, rendered.inventory_digest)
    return lab_dir


class Watcher:
    """The runtime user's view of the broker: every message on the given topics, timestamped."""

    def __init__(self, lab: LabFiles, topics: list[str]) -> None:
        self.messages: list[tuple[float, str, dict[str, Any], bool]] = []
        self._lock = threading.Lock()
        user = lab.runtime.runtime_user
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"watcher-{uuid.uuid4().hex[:8]}")
        self.client.username_pw_set(user, lab.password(user))
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        connected = threading.Event()
        self.client.on_connect = lambda *a: connected.set()
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect(lab.runtime.broker.host, lab.runtime.broker.port)
        self.client.loop_start()
        assert connected.wait(5), "watcher could not connect"
        self.client.subscribe([(t, 1) for t in topics])
        assert subscribed.wait(5), "watcher could not subscribe"

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((time.monotonic(), msg.topic, json.loads(msg.payload),
                                  bool(msg.retain)))

    def on(self, topic: str, since: float = 0.0) -> list[dict[str, Any]]:
        with self._lock:
            return [m for t, tp, m, _ in self.messages if tp == topic and t >= since]

    def wait(self, topic: str, match: Callable[[dict[str, Any]], bool], since: float = 0.0,
             timeout: float = 5.0, what: str = "a message") -> dict[str, Any]:
        return wait_for(lambda: next((m for m in self.on(topic, since) if match(m)), None),
                        timeout, f"{what} on {topic}")

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        self.client.publish(topic, json.dumps(payload), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start_emulator(lab_dir: Path, *devices: str) -> subprocess.Popen[bytes]:
    """`python -m dtnlab.runtime emulator` for some devices of the lab, in the background."""
    argv = [sys.executable, "-m", "dtnlab.runtime", "emulator", "--lab", str(lab_dir)]
    for device in devices:
        argv += ["--device", device]
    log = (lab_dir / "run" / "emulator-test.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def lab_processes(lab_dir: Path) -> list[int]:
    """Every process whose command line or working directory is inside the lab folder."""
    found = []
    root = str(lab_dir.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = str((entry / "cwd").readlink())
        except OSError:
            continue
        if root in cmdline or cwd.startswith(root):
            found.append(int(entry.name))
    return found


def lab_files(lab_dir: Path) -> LabFiles:
    return load_lab(lab_dir)


def apply_fault(lab_dir: Path, device: str, kind: str, **args: Any) -> None:
    """A fault through the file channel, once a running emulator reports it applied."""
    request = request_fault(lab_dir, device, kind, args)
    wait_for(lambda: applied_faults(lab_dir).get(device, {}).get("id") == request["id"],
             what=f"the emulator to apply {kind} to {device}")


def emulator_totals(lab_dir: Path) -> dict[str, Any]:
    """The emulator processes' status files added up: telemetry per device and the outboxes."""
    totals: dict[str, Any] = {"connected": 0, "published_by_device": {}, "unacked": 0,
                              "acked": 0, "held": 0, "resent": 0, "dropped": 0}
    for path in (lab_dir / STATUS_DIR).glob("*.json"):
        status = json.loads(path.read_text())
        totals["connected"] += status["connected"]
        totals["published_by_device"].update(status["published_by_device"])
        for key in ("unacked", "acked", "held", "resent", "dropped"):
            totals[key] += status["outbox"][key]
    return totals
