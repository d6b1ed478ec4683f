"""Each bad inventory in tests/errors/ is paired with its exact expected error text."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtnlab.cli import main

ERRORS = Path(__file__).resolve().parent.parent / "errors"
CASES = sorted(p.stem for p in ERRORS.glob("*.yaml"))


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


def test_unknown_endpoint_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "inventory.yaml"
    bad.write_text("dcim.device:\n  - {name: x}\n")
    assert main(["validate", "--inventory", str(bad)]) == 2
    assert "file[inventory.yaml].dcim.device: unknown endpoint" in capsys.readouterr().err


def test_yaml_syntax_error_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "inventory.yaml"
    bad.write_text("dcim.devices: [\n")
    assert main(["validate", "--inventory", str(bad)]) == 2
    assert "file[inventory.yaml].syntax:" in capsys.readouterr().err
