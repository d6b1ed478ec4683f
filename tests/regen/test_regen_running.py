"""`dtnlab regen` on a running local lab (file inventory): only the edited twins are touched."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dtnlab.cli import main
from dtnlab.runtime.engine.status import StatusFile
from dtnlab.runtime.providers import LocalProvider
from dtnlab.runtime.providers.reload import catches, running_nodes
from tests.regen.regenlab import (
    MOVED,
    add_sensor,
    edited,
    inventory,
    move_sensor,
    regen,
    remove_device,
    set_threshold,
    write,
)

pytestmark = pytest.mark.mosquitto

CONNECTED = re.compile(r"New client connected from [^ ]+:(\d+) as (\S+) ")
TWINS = 9


class RunningLab:
    def __init__(self, folder: Path) -> None:
        self.path, self.data = inventory(folder, period_s=0.5, heartbeat_s=4.0)
        self.labs = folder / "labs"
        assert regen(self.path, self.labs) == 0
        self.dir = self.labs / "rg"
        self.provider = LocalProvider(self.dir, shards=2)

    def edit(self, *changes: Any) -> None:
        for change in changes:
            self.data = edited(self.data, change)
        write(self.path, self.data)

    def regen(self) -> dict[str, Any]:
        assert regen(self.path, self.labs, "--wait", "20") == 0
        doc: dict[str, Any] = json.loads((self.dir / "run" / "regen.json").read_text())
        return doc

    def engine(self) -> dict[str, Any]:
        return StatusFile(self.dir / "run" / "engine" / "status.json").read() or {}

    def connections(self) -> dict[str, str]:
        log = (self.dir / "run" / "mosquitto" / "mosquitto.log").read_text(errors="replace")
        return {client: port for port, client in CONNECTED.findall(log)}

    def emulated(self) -> int:
        return sum(json.loads(p.read_text())["devices"]
                   for p in (self.dir / "run" / "emulator").glob("*.json"))

    def wait(self, predicate: Any, timeout: float = 20.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)
        return value


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLab]:
    running = RunningLab(tmp_path_factory.mktemp("running"))
    running.provider.up(timeout=90)
    # `up` waits for the twins, not for the API's lifespan, which installs its SIGHUP handler
    running.wait(lambda: all(catches(e.pid, signal.SIGHUP) for n, e in running_nodes(
        running.dir).items() if n != "supervisor" and n != "broker"), what="reloadable nodes")
    try:
        yield running
    finally:
        running.provider.down()


def test_a_regen_without_change_signals_nothing(lab: RunningLab) -> None:
    pids = {n.name: n.pid for n in lab.provider.nodes()}
    before = lab.connections()
    doc = lab.regen()
    assert doc["signalled"] == []
    assert {n.name: n.pid for n in lab.provider.nodes()} == pids
    assert lab.connections() == before


def test_move_add_remove_and_threshold_reach_only_their_twins(
        lab: RunningLab, capsys: pytest.CaptureFixture[str]) -> None:
    pids = {n.name: n.pid for n in lab.provider.nodes()}
    before = lab.connections()
    engine_before = lab.engine()
    lab.edit(move_sensor, add_sensor, lambda d: remove_device(d, "AAR-L1-C1-VT-01"),
             lambda d: set_threshold(d, [18, 25]))
    # `dtnlab diff` first: what the running lab would go through, and nothing happens yet
    assert main(["diff", "--inventory", str(lab.path), "--labs-dir", str(lab.labs)]) == 1
    running = capsys.readouterr().out.partition("# running lab, if regenerated now")[2]
    assert running.splitlines()[1:] == [
        "#   + twin aar-l1-c1-tt-02 (new device: credentials, ACL, twin, emulator)",
        "#   - twin aar-l1-c1-vt-01 (twin and emulator stop, credentials and ACL go)",
        f"#   ~ twin {MOVED} moved and reconfigured (hierarchy, metrics, topics, uns_path)",
        "#   ~ twin aar-l3-c1-tt-01 reconfigured (metrics)",
        "#   * broker: reload ACL and passwords (SIGHUP, other clients stay)"]
    assert lab.engine().get("lab_sha256") == engine_before.get("lab_sha256")
    doc = lab.regen()
    twins = doc["changes"]["twins"]
    assert twins["moved"] == [MOVED]
    assert twins["added"] == ["aar-l1-c1-tt-02"]
    assert twins["removed"] == ["aar-l1-c1-vt-01"]
    assert twins["reconfigured"] == [MOVED, "aar-l3-c1-tt-01"]  # the moved one: both
    assert {s.split(":")[0] for s in doc["signalled"]} >= {"broker", "engine", "emulator-0",
                                                          "emulator-1"}
    assert all(s.endswith(":HUP") for s in doc["signalled"])
    # no process restarted: every node kept its pid
    assert {n.name: n.pid for n in lab.provider.nodes()} == pids
    engine = lab.wait(lambda: (e := lab.engine()) and e.get("lab_sha256") == doc[
        "inventory_sha256"] and e, what="the engine to reload")
    assert engine["twins"] == TWINS
    assert engine["started_at"] == engine_before["started_at"]
    lab.wait(lambda: lab.emulated() == TWINS, what="the emulators to follow")
    lab.wait(lambda: "aar-l1-c1-tt-02" in lab.connections(), what="the new device to connect")
    lab.wait(lambda: lab.connections().get(MOVED) != before.get(MOVED),
             what="the moved device to reconnect")
    now = lab.connections()
    touched = {MOVED, "aar-l1-c1-tt-02", "aar-l1-c1-vt-01"}
    for client, port in before.items():
        if client not in touched and not client.startswith("dtn-"):
            assert now[client] == port, f"{client} reconnected"
    # every twin reports again, the moved one from its new topic
    lab.wait(lambda: lab.engine().get("states", {}).get("healthy", 0) + lab.engine().get(
        "states", {}).get("degraded", 0) + lab.engine().get("states", {}).get("critical", 0)
        == TWINS, timeout=30, what="every twin to report again")
