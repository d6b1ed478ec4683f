"""`dtnlab regen` on the lab folder: only what changed is written, failures change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dtnlab import regen as rg
from dtnlab.inventory.source import FileSource
from tests.regen.regenlab import add_sensor, collide, edited, inventory, regen, remove_device, write


def snapshot(lab_dir: Path) -> dict[str, tuple[int, bytes]]:
    """Every file of the lab but run/: (mtime_ns, content)."""
    return {str(p.relative_to(lab_dir)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(lab_dir.rglob("*")) if p.is_file() and "run" not in p.parts}


def status(lab_dir: Path) -> dict[str, object]:
    return json.loads((lab_dir / "run" / "regen.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture
def lab(tmp_path: Path) -> tuple[Path, dict[str, object], Path]:
    path, data = inventory(tmp_path)
    assert regen(path, tmp_path / "labs") == 0
    return path, data, tmp_path / "labs" / "rg"


def test_second_regen_without_change_touches_nothing(
        lab: tuple[Path, dict[str, object], Path], capsys: pytest.CaptureFixture[str]) -> None:
    path, _, lab_dir = lab
    before = snapshot(lab_dir)
    capsys.readouterr()
    assert regen(path, lab_dir.parent) == 0
    assert "up to date, nothing to do" in capsys.readouterr().out
    assert snapshot(lab_dir) == before
    doc = status(lab_dir)
    assert doc["ok"] is True
    assert doc["signalled"] == []
    assert doc["changes"]["files"] == {"created": [], "changed": [], "removed": []}


def test_bad_edit_changes_nothing_and_is_recorded(
        lab: tuple[Path, dict[str, object], Path], capsys: pytest.CaptureFixture[str]) -> None:
    path, data, lab_dir = lab
    before = snapshot(lab_dir)
    write(path, edited(data, collide))  # type: ignore[arg-type]
    assert regen(path, lab_dir.parent, "--lab", "rg") == 2
    assert snapshot(lab_dir) == before  # files and secrets alike
    err = capsys.readouterr().err
    assert "regen failed; the lab is left as it was" in err
    assert "collides with 'AAR-L1-C1-TT-01' after normalising" in err
    doc = status(lab_dir)
    assert doc["ok"] is False
    assert doc["problems"] == ["dcim.devices[aar l1 c1 tt 01].name: collides with "
                               "'AAR-L1-C1-TT-01' after normalising (both become "
                               "'aar-l1-c1-tt-01')"]
    assert doc["last_success"] is not None  # the previous good regen is still known


def test_the_lab_is_found_without_lab_option_for_a_file(
        lab: tuple[Path, dict[str, object], Path]) -> None:
    path, data, lab_dir = lab
    write(path, edited(data, collide))  # type: ignore[arg-type]
    assert regen(path, lab_dir.parent) == 2
    assert status(lab_dir)["ok"] is False


def test_credentials_follow_devices_and_others_keep_theirs(
        lab: tuple[Path, dict[str, object], Path]) -> None:
    path, data, lab_dir = lab
    devices = lab_dir / "secrets" / "devices"
    kept = (devices / "aar-l1-c1-tt-01.password").read_text()
    write(path, edited(data, lambda d: (add_sensor(d),  # type: ignore[arg-type, func-returns-value]
                                        remove_device(d, "AAR-L1-C1-VT-01"))))
    assert regen(path, lab_dir.parent) == 0
    assert (devices / "aar-l1-c1-tt-02.password").stat().st_mode & 0o777 == 0o600
    assert not (devices / "aar-l1-c1-vt-01.password").exists()
    assert (devices / "aar-l1-c1-tt-01.password").read_text() == kept
    acl = (lab_dir / "mosquitto" / "acl").read_text()
    assert "user aar-l1-c1-tt-02" in acl
    assert "user aar-l1-c1-vt-01" not in acl
    assert "aar-l1-c1-vt-01" not in (lab_dir / "mosquitto" / "passwd").read_text()
    twins = status(lab_dir)["changes"]["twins"]  # type: ignore[index]
    assert twins["added"] == ["aar-l1-c1-tt-02"]
    assert twins["removed"] == ["aar-l1-c1-vt-01"]
    assert twins["broker_reload"] is True


def test_preview_writes_no_secret(lab: tuple[Path, dict[str, object], Path]) -> None:
    path, data, lab_dir = lab
    write(path, edited(data, add_sensor))  # type: ignore[arg-type]
    before = snapshot(lab_dir)
    lab_model = FileSource(path).load()
    with rg.staged_secrets(lab_dir) as stage:
        pv = rg.preview(lab_model, lab_dir, stage)
    assert pv.plan.added == ("aar-l1-c1-tt-02",)
    assert "twins/aar-l1-c1-tt-02.json" in pv.files.created
    assert "mosquitto/passwd" in pv.files.changed
    assert snapshot(lab_dir) == before
    assert not (lab_dir / rg.STAGE_DIR).exists()


def test_a_write_that_fails_halfway_leaves_the_old_files(
        lab: tuple[Path, dict[str, object], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    path, data, lab_dir = lab
    write(path, edited(data, add_sensor))  # type: ignore[arg-type]
    before = snapshot(lab_dir)
    lab_model = FileSource(path).load()
    with rg.staged_secrets(lab_dir) as stage:
        pv = rg.preview(lab_model, lab_dir, stage)
    real = Path.write_text
    calls = []

    def full_disk(self: Path, text: str, *args: object, **kwargs: object) -> int:
        calls.append(self)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(self, text, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OSError, match="No space"):
        rg.commit_files(lab_dir, pv.rendered.files, pv.rendered.inventory_digest)
    monkeypatch.undo()
    assert snapshot(lab_dir) == before
    assert not list(lab_dir.rglob(f"*{rg.TMP_SUFFIX}"))
