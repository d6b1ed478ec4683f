"""Each bad inventory in tests/errors/ is paired with its exact expected error text."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from dtnlab.cli import main
from dtnlab.inventory.source import FileSource

ERRORS = Path(__file__).resolve().parent.parent / "errors"
CASES = sorted(p.stem for p in ERRORS.glob("*.yaml"))
MINIMAL = ERRORS.parent / "golden" / "minimal" / "inventory.yaml"


@pytest.mark.parametrize("case", CASES)
def test_bad_inventory_reports_every_problem(
    case: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ERRORS.parent.parent)
    code = main(["validate", "--inventory", f"tests/errors/{case}.yaml"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (ERRORS / f"{case}.log").read_text()


def test_missing_file_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--inventory", "/nonexistent/inventory.yaml"]) == 2
    assert "file[inventory.yaml].path: No such file or directory" in capsys.readouterr().err


def test_other_endpoints_of_a_dump_are_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # A dump of a real NetBox holds endpoints dtnlab does not read: it loads unchanged.
    data = yaml.safe_load(MINIMAL.read_text())
    data["dcim.manufacturers"] = [{"id": 1, "name": "Acme", "slug": "acme"}]
    data["dcim.regions"] = [{"id": 1, "name": "Europe", "slug": "europe", "_depth": 0}]
    data["dcim.device"] = [{"name": "typo"}]
    dump = tmp_path / "inventory.yaml"
    dump.write_text(yaml.safe_dump(data))
    caplog.set_level(logging.INFO, logger="dtnlab.inventory.source")
    assert main(["validate", "--inventory", str(dump)]) == 0
    assert FileSource(dump).load() == FileSource(MINIMAL).load()
    assert "minimal: 3 devices" in capsys.readouterr().out
    logged = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("INFO", "inventory.yaml: ignoring endpoints dtnlab does not read: dcim.device, "
                    "dcim.manufacturers, dcim.regions") in logged
    assert ("WARNING", "inventory.yaml: ignoring dcim.device, which dtnlab does not read; did "
                       "you mean dcim.devices?") in logged


@pytest.mark.parametrize(("text", "expected"), [
    ("- dcim.devices\n", "file[inventory.yaml].top level: must be a mapping of endpoints"),
    ("dcim.devices: {name: x}\n",
     "file[inventory.yaml].dcim.devices: must be a list of objects, not a mapping"),
    ("dcim.sites: [{name: s}, site-2]\n",
     "file[inventory.yaml].dcim.sites[2]: must be an object (a mapping), not a string"),
    ("dtnlab: [lab]\n", "file[inventory.yaml].dtnlab: must be a mapping of settings"),
], ids=["top-level-list", "endpoint-mapping", "object-string", "settings-list"])
def test_a_top_level_of_the_wrong_shape_is_named(
    text: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "inventory.yaml"
    bad.write_text(text)
    assert main(["validate", "--inventory", str(bad)]) == 2
    assert expected in capsys.readouterr().err


def test_yaml_syntax_error_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "inventory.yaml"
    bad.write_text("dcim.devices: [\n")
    assert main(["validate", "--inventory", str(bad)]) == 2
    assert "file[inventory.yaml].syntax:" in capsys.readouterr().err
