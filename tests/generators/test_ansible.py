"""The generated ansible inventory parses with the real ansible-inventory and has the groups."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dtnlab.cli import main
from tests.conftest import DEMO_INVENTORY


def test_ansible_inventory_lists_groups(tmp_path: Path) -> None:
    assert main(["generate", "--inventory", str(DEMO_INVENTORY), "--labs-dir", str(tmp_path)]) == 0
    inventory = tmp_path / "demo-plant" / "ansible" / "inventory.yml"
    ansible_inventory = Path(sys.executable).parent / "ansible-inventory"
    out = subprocess.run(
        [str(ansible_inventory), "-i", str(inventory), "--list"],
        capture_output=True, text=True, check=True, timeout=120,
        env={"ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"), "PATH": "/usr/bin:/bin",
             "ANSIBLE_HOME": str(tmp_path / "ansible-home")},
    )
    listed = json.loads(out.stdout)
    assert "[WARNING]" not in out.stderr, out.stderr
    for group in ("site_plant_aarhus", "site_plant_brno", "area_plant_aarhus_processing",
                  "area_plant_brno_bottling", "role_plc", "role_access_switch", "twins"):
        assert group in listed, group
    assert len(listed["role_plc"]["hosts"]) == 12
    assert len(listed["twins"]["hosts"]) == 58
    host = listed["_meta"]["hostvars"]["aar-l1-c1-plc-01"]
    assert host["ansible_host"] == "172.30.0.13"
    path = "northwind/plant-aarhus/processing/line-1/aar-l1-c1/aar-l1-c1-plc-01"
    assert host["dtn_uns_path"] == path
    assert host["netbox_name"] == "AAR-L1-C1-PLC-01"
