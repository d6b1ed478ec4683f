"""A user's platform map through the CLI: --platform-map, $DTN_PLATFORM_MAP, and regen's memory."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from dtnlab.cli import build_parser, main
from dtnlab.commands.regen import record_source
from dtnlab.inventory.source import FileSource
from dtnlab.runtime.regen_record import SOURCE_FILE, STATUS_FILE
from tests.conftest import DEMO_INVENTORY

NETWORK_OS_MAP = """\
platforms:
  linux-router: {kind: arista_ceos, image: "ceos:4.32.0F", interface_name: "eth{index}",
                 startup_config: arista_ceos.cfg.j2, cmd: null}
  linux-bridge: {kind: nokia_srlinux, image: "ghcr.io/nokia/srlinux:24.10.1",
                 interface_name: "e1-{index}", cmd: null}
"""


@pytest.fixture
def user_map(tmp_path: Path) -> Path:
    path = tmp_path / "platforms.yml"
    path.write_text(NETWORK_OS_MAP)
    return path


def topology_of(labs: Path) -> dict[str, object]:
    doc: dict[str, object] = yaml.safe_load((labs / "demo-plant" / "topology.clab.yml").read_text())
    return doc


def kinds(doc: dict[str, object]) -> dict[str, str]:
    nodes = doc["topology"]["nodes"]  # type: ignore[index]
    return {name: nodes[name]["kind"] for name in ("aar-core-01", "aar-l1-sw-01")}


def generate(labs: Path, *extra: str) -> int:
    return main(["generate", "--inventory", str(DEMO_INVENTORY), "--labs-dir", str(labs),
                 *extra])


def test_generate_takes_the_map_from_the_flag(tmp_path: Path, user_map: Path) -> None:
    assert generate(tmp_path / "shipped") == 0
    assert set(kinds(topology_of(tmp_path / "shipped")).values()) == {"linux"}
    assert generate(tmp_path / "user", "--platform-map", str(user_map)) == 0
    doc = topology_of(tmp_path / "user")
    assert kinds(doc) == {"aar-core-01": "arista_ceos", "aar-l1-sw-01": "nokia_srlinux"}
    assert (tmp_path / "user" / "demo-plant" / "startup" / "aar-core-01.cfg").is_file()


def test_generate_takes_the_map_from_the_environment(
        tmp_path: Path, user_map: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTN_PLATFORM_MAP", str(user_map))
    assert generate(tmp_path) == 0
    assert kinds(topology_of(tmp_path))["aar-core-01"] == "arista_ceos"


@pytest.mark.parametrize(("text", "expected"), [
    ("platforms:\n  linux-bridge: {kind: nokia_srlinux, type: ixr-nope}\n",
     "platform 'linux-bridge' field 'type': \"ixr-nope\" is not one of"),
    ("platforms:\n  linux-router: {interface_name: '{slot}/{index}'}\n",
     "platform 'linux-router' field 'interface_name': '{slot}/{index}' uses {slot}"),
    ("platforms:\n  new-os: {kind: linux}\n",
     "platform 'new-os' field 'image': Field required"),
    ("platforms: [linux-iot]\n", "platforms: must be a mapping"),
], ids=["schema-type", "template-field", "missing-image", "not-a-mapping"])
def test_a_bad_map_is_named_by_platform_and_field(
        tmp_path: Path, text: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text)
    labs = tmp_path / "labs"
    for command in ("validate", "generate", "diff"):
        code = main([command, "--inventory", str(DEMO_INVENTORY), "--labs-dir", str(labs),
                     "--platform-map", str(path)])
        err = capsys.readouterr().err
        assert code == 2, command
        assert err.startswith(f"error: {path}: platform map is invalid\n"), err
        assert expected in err, err
    assert not labs.exists()


def test_validate_applies_the_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # NetBox names kept as they are: the demo switch's interfaces are fine, a slash is not.
    path = tmp_path / "slashes.yml"
    path.write_text("platforms:\n  linux-bridge: {interface_name: 'Ethernet1/{index}'}\n")
    code = main(["validate", "--inventory", str(DEMO_INVENTORY), "--platform-map", str(path)])
    assert code == 2
    assert "lab name 'Ethernet1/1' is not a Linux interface name" in capsys.readouterr().err


def test_regen_and_diff_keep_the_map_the_lab_was_brought_up_with(
        tmp_path: Path, user_map: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labs = tmp_path / "labs"
    argv = ["--inventory", str(DEMO_INVENTORY), "--labs-dir", str(labs)]
    assert main(["generate", *argv, "--platform-map", str(user_map)]) == 0
    # What `dtnlab up --platform-map` records for the webhook's regen and for later commands.
    args: argparse.Namespace = build_parser().parse_args(
        ["up", *argv, "--platform-map", str(user_map)])
    folder = labs / "demo-plant"
    record_source(args, FileSource(DEMO_INVENTORY).load(), folder)
    recorded = json.loads((folder / SOURCE_FILE).read_text())["argv"]
    assert recorded[recorded.index("--platform-map") + 1] == str(user_map.resolve())
    capsys.readouterr()
    assert main(["diff", *argv]) == 0
    assert main(["regen", *argv, "--no-apply", "--wait", "0"]) == 0
    assert "up to date, nothing to do" in capsys.readouterr().out
    assert kinds(topology_of(labs))["aar-core-01"] == "arista_ceos"
    # An explicit map wins over the recorded one: back to the shipped kinds.
    shipped = tmp_path / "empty.yml"
    shipped.write_text("platforms: {}\n")
    assert main(["diff", *argv, "--platform-map", str(shipped)]) == 1
    out = capsys.readouterr().out
    assert "-      kind: arista_ceos\n" in out
    assert "+      kind: linux\n" in out
    # A recorded map that went bad fails the regen, recorded in run/regen.json.
    user_map.write_text("platforms:\n  linux-router: {kind: 'not a kind'}\n")
    assert main(["regen", *argv, "--no-apply", "--wait", "0"]) == 2
    err = capsys.readouterr().err
    assert "platform 'linux-router' field 'kind': 'not a kind' is not a containerlab kind" in err
    assert "the lab is left as it was" in err
    status = json.loads((folder / STATUS_FILE).read_text())
    assert (status["ok"], status["error"]) == (False, f"{user_map}: platform map is invalid")
