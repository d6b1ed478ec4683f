"""The ansible playbooks, for real: site.yml brings the demo plant up on the local provider and
verifies every twin, a second run changes nothing, regen.yml applies an inventory edit to the
running lab without restarting it, down.yml stops it all. ansible-core from the venv, local
connection, real Mosquitto."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.broker import free_port
from tests.conftest import DEMO_INVENTORY, REPO

pytestmark = pytest.mark.mosquitto

PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
LAB = "nt-ansible"
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                   re.MULTILINE)


def _play(playbook: str, home: Path, **extra: str) -> tuple[int, str, dict[str, tuple[int, ...]]]:
    """Run a playbook from the repository root; (exit code, output, recap per host)."""
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_HOME": str(home / "ansible-home"),
           "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"}
    args = [str(PLAYBOOK), f"ansible/{playbook}"]
    for name, value in extra.items():
        args += ["-e", f"{name}={value}"]
    started = time.monotonic()
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    print(f"{playbook}: exit {result.returncode} in {time.monotonic() - started:.1f}s")
    output = result.stdout + result.stderr
    recap = {m[0]: tuple(int(n) for n in m[1:]) for m in RECAP.findall(output)}
    return result.returncode, output, recap


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The demo plant's inventory under its own lab name and free ports, and the play vars."""
    doc = yaml.safe_load(DEMO_INVENTORY.read_text())
    doc["dtnlab"].update(lab=LAB, mqtt_port=free_port(), mqtts_port=free_port(),
                         api_port=free_port())
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    extra = {"dtn_inventory": str(inventory), "dtn_lab": LAB,
             "dtn_labs_dir": str(tmp_path / "labs")}
    try:
        yield extra
    finally:
        code, output, _recap = _play("down.yml", tmp_path, **extra)
        assert code == 0, output[-3000:]


def test_site_regen_and_down_playbooks(demo: dict[str, str], tmp_path: Path) -> None:
    code, output, recap = _play("site.yml", tmp_path, **demo)
    assert code == 0, output[-3000:]
    twins = {host for host in recap if host != "localhost"}
    assert len(twins) >= 40  # every twinned device of the generated inventory was verified
    assert all(recap[h][3] == 0 for h in recap), output[-3000:]  # failed=0 everywhere
    assert recap["localhost"][1] >= 1  # generated and started: changed

    code, output, recap = _play("site.yml", tmp_path, **demo)
    assert code == 0, output[-3000:]
    assert recap["localhost"][1] == 0, output[-3000:]  # already up and generated: no change

    lab_dir = Path(demo["dtn_labs_dir"]) / LAB
    source = json.loads((lab_dir / "run" / "regen-source.json").read_text())
    assert source["argv"][:2] == ["--inventory", demo["dtn_inventory"]]  # webhooks can regen
    engine_pid = node_pids(demo)["engine"]

    # an inventory edit: regen.yml applies it to the running lab, which reloads in place
    inventory = Path(demo["dtn_inventory"])
    doc = yaml.safe_load(inventory.read_text())
    plc = next(d for d in doc["dcim.devices"] if d["name"] == "AAR-L1-C1-PLC-01")
    plc["local_context_data"] = {"dtnlab": {"heartbeat_s": 21}}
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, output, recap = _play("regen.yml", tmp_path, **demo)
    assert code == 0, output[-3000:]
    assert recap["localhost"][1] == 1, output[-3000:]  # the lab changed
    assert "~ twin aar-l1-c1-plc-01 reconfigured (heartbeat_s)" in output  # what it did, shown
    assert "applied by the running lab in" in output
    twin = lab_dir / "twins" / "aar-l1-c1-plc-01.json"
    assert json.loads(twin.read_text())["heartbeat_s"] == 21
    assert node_pids(demo)["engine"] == engine_pid  # reloaded, not restarted
    manifest = json.loads((lab_dir / "manifest.json").read_text())
    engine = json.loads((lab_dir / "run" / "engine" / "status.json").read_text())
    assert engine["lab_sha256"] == manifest["inventory_sha256"]  # the engine runs the edit

    code, output, recap = _play("regen.yml", tmp_path, **demo)
    assert code == 0, output[-3000:]
    assert recap["localhost"][1] == 0, output[-3000:]  # nothing new: nothing changed


def node_pids(demo: dict[str, str]) -> dict[str, int]:
    """The running lab's nodes and their pids, as `dtnlab status --json` reports them."""
    done = subprocess.run([str(PLAYBOOK.parent / "dtnlab"), "status", "--json", "--lab", LAB,
                           "--labs-dir", demo["dtn_labs_dir"]], capture_output=True, text=True,
                          timeout=60, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return {n["name"]: n["pid"] for n in json.loads(done.stdout)["nodes"] if n["alive"]}
