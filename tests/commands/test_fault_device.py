"""`dtnlab fault DEVICE`: a twin id or the device's NetBox name; anything else is named back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dtnlab.cli import main as dtnlab
from dtnlab.commands.lab import twin_id_of
from tests.labs import generate_demo

TWINS = ["aar-l1-c1-tt-01", "aar-l1-c1-plc-01"]


@pytest.mark.parametrize(("given", "twin"), [
    ("aar-l1-c1-tt-01", "aar-l1-c1-tt-01"),
    ("AAR-L1-C1-TT-01", "aar-l1-c1-tt-01"),
    ("AAR L1 C1 PLC 01", "aar-l1-c1-plc-01"),
    ("AAR-L1-C1-TT-02", None),
    ("", None),
], ids=["twin-id", "netbox-name", "name-with-spaces", "not-a-twin", "empty"])
def test_twin_id_of(given: str, twin: str | None) -> None:
    assert twin_id_of(given, TWINS) == twin


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_demo(tmp_path_factory.mktemp("fault") / "demo-plant")


def _fault(lab_dir: Path, device: str) -> int:
    return dtnlab(["fault", device, "spike", "--wait", "0", "--lab", lab_dir.name,
                   "--labs-dir", str(lab_dir.parent)])


def test_netbox_name_reaches_the_twin(lab_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # No emulator runs here: the request is left for one, under the twin's id.
    assert _fault(lab_dir, "AAR-L1-C1-TT-01") == 1
    request = json.loads((lab_dir / "run" / "faults" / "aar-l1-c1-tt-01.json").read_text())
    assert request["fault"] == "spike"
    assert "for aar-l1-c1-tt-01" in capsys.readouterr().err


def test_unknown_device_is_named(lab_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _fault(lab_dir, "AAR-L9-TT-99") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: device 'AAR-L9-TT-99' (twin id 'aar-l9-tt-99') is not a twin "
                          "of demo-plant; twins are ")
    assert not (lab_dir / "run" / "faults" / "aar-l9-tt-99.json").exists()
