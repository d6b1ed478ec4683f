"""`--set KEY=VALUE`: every lab setting from the command line, for labs read from NetBox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dtnlab.cli import main
from tests.conftest import DEMO_INVENTORY


def test_settings_from_the_command_line_reach_the_generated_lab(tmp_path: Path) -> None:
    argv = ["generate", "--inventory", str(DEMO_INVENTORY), "--labs-dir", str(tmp_path),
            "--set", "telemetry_qos=1", "--set", "api_port=9123",
            "--set", "api_users={alice: operator, root: admin}",
            "--set", "enterprise_name=Yes"]  # text settings stay text, not YAML's true
    assert main(argv) == 0
    runtime = json.loads((tmp_path / "demo-plant" / "runtime.json").read_text())
    assert runtime["telemetry_qos"] == 1
    assert runtime["api"]["port"] == 9123
    assert {u: v["role"] for u, v in runtime["api"]["users"].items()} == {
        "alice": "operator", "root": "admin"}
    passwords = json.loads((tmp_path / "demo-plant" / "secrets" / "api-users.json").read_text())
    assert sorted(passwords) == ["alice", "root"]


@pytest.mark.parametrize(("pair", "message"), [
    pytest.param("telemetry_qos=2", "--set[telemetry_qos].value: Input should be 0 or 1",
                 id="bad-value"),
    pytest.param("colour=blue", "--set[colour=blue].colour: expected KEY=VALUE with KEY one of",
                 id="unknown-key"),
    pytest.param("lab=other", "--set[lab=other].lab: expected KEY=VALUE", id="name-is-lab-flag"),
])
def test_a_bad_setting_is_named_and_nothing_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], pair: str, message: str) -> None:
    argv = ["generate", "--inventory", str(DEMO_INVENTORY), "--labs-dir", str(tmp_path),
            "--set", pair]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "demo-plant").exists()
