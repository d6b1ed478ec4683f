"""validate runs generate's checks; generate refuses a lab before it writes anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dtnlab.cli import main
from dtnlab.generators import clab_schema
from tests.conftest import REPO

CLAB_LIMITS = REPO / "tests" / "errors" / "containerlab.yaml"
TINY = """\
dtnlab: {lab: tiny}
dcim.sites: [{name: Site, slug: site}]
dcim.platforms: [{name: Box OS, slug: box-os}]
dcim.device-roles: [{name: Switch, slug: switch}]
dcim.device-types: [{model: Box, slug: box}]
dcim.devices:
  - {name: sw1, role: switch, device_type: box, site: site, platform: box-os}
  - {name: sw2, role: switch, device_type: box, site: site}
"""


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_refuses_what_validate_reports_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labs = tmp_path / "labs"
    args = ["--inventory", str(CLAB_LIMITS), "--labs-dir", str(labs)]
    code, _, validated = run(["validate", *args], capsys)
    assert code == 2
    assert "node name 'host' is reserved by containerlab" in validated
    code, _, generated = run(["generate", *args], capsys)
    assert code == 2
    assert generated == validated
    assert not labs.exists()  # not even the lab's secrets


@pytest.fixture
def schema_without_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """containerlab's schema as a version would be that has no `ports` and no `labels` on nodes."""
    schema = json.loads(clab_schema.DEFAULT_SCHEMA.read_text())
    for field in ("ports", "labels"):
        del schema["definitions"]["node-config"]["properties"][field]
    path = tmp_path / "clab.schema.json"
    path.write_text(json.dumps(schema))
    monkeypatch.setenv(clab_schema.SCHEMA_ENV, str(path))
    return path


def test_generate_checks_containerlabs_schema(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], schema_without_ports: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(TINY)
    labs = tmp_path / "labs"
    for command in ("validate", "generate"):
        code, _, err = run([command, "--inventory", str(inventory), "--labs-dir", str(labs)],
                           capsys)
        assert code == 2, command
        assert ("topology.clab.yml[topology/nodes/database].schema: containerlab's schema: "
                "Additional properties are not allowed ('labels' was unexpected)") in err
        assert "topology.clab.yml[topology/nodes/broker].schema:" in err
        assert ("dcim.devices[sw1].platform: its node breaks containerlab's schema: "
                "Additional properties are not allowed ('labels' was unexpected) (platform "
                "box-os of the platform map)") in err
        assert "dcim.devices[sw2].platform:" in err
        assert "(platform default of" in err
    assert not labs.exists()


def test_a_valid_lab_is_valid_and_generates(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(TINY)
    labs = tmp_path / "labs"
    code, out, _ = run(["validate", "--inventory", str(inventory)], capsys)
    assert (code, out) == (0, "tiny: 2 devices (0 twins), 0 links, 4 hierarchy levels: valid\n")
    code, _, _ = run(["generate", "--inventory", str(inventory), "--labs-dir", str(labs)],
                     capsys)
    assert code == 0
    assert (labs / "tiny" / "topology.clab.yml").is_file()
