"""`dtnlab regen` on the lab folder: only what changed is written, failures change nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dtnlab import regen as rg
from dtnlab import regen_commit
from dtnlab.cli import main
from dtnlab.inventory.source import FileSource
from tests.regen.regenlab import (
    MOVED,
    add_sensor,
    collide,
    device,
    edited,
    inventory,
    move_sensor,
    regen,
    remove_device,
    set_threshold,
    write,
)

LONG_NAME = "AAR-L1-C1-PLC-01-" + "X" * 50  # valid in NetBox, too long for a DNS label


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
    with regen_commit.staged_secrets(lab_dir) as stage:
        pv = rg.preview(lab_model, lab_dir, stage)
    assert pv.plan.added == ("aar-l1-c1-tt-02",)
    assert "twins/aar-l1-c1-tt-02.json" in pv.files.created
    assert "mosquitto/passwd" in pv.files.changed
    assert snapshot(lab_dir) == before
    assert not (lab_dir / regen_commit.STAGE_DIR).exists()


def status_text(lab_dir: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """What `dtnlab status` prints of the lab (not running: exit 3)."""
    capsys.readouterr()
    assert main(["status", "--lab", lab_dir.name, "--labs-dir", str(lab_dir.parent)]) == 3
    return capsys.readouterr().out


def test_a_render_failure_changes_nothing_and_is_reported(
        lab: tuple[Path, dict[str, object], Path], capsys: pytest.CaptureFixture[str]) -> None:
    """The inventory validates, but the topology refuses the name: recorded like a bad edit."""
    path, data, lab_dir = lab
    before = snapshot(lab_dir)
    write(path, edited(data, lambda d: device(d, "AAR-L1-C1-PLC-01").update(  # type: ignore[arg-type]
        name=LONG_NAME)))
    assert regen(path, lab_dir.parent) == 2
    assert snapshot(lab_dir) == before
    assert "regen failed; the lab is left as it was" in capsys.readouterr().err
    doc = status(lab_dir)
    assert doc["ok"] is False
    assert doc["error"] == "topology.clab.yml of lab rg: the regenerated lab fails its checks"
    assert len(doc["problems"]) == 1  # type: ignore[arg-type]
    assert f"dcim.devices[{LONG_NAME}].name" in doc["problems"][0]  # type: ignore[index]
    assert "is not a DNS label" in doc["problems"][0]  # type: ignore[index]
    assert doc["history"][-1]["ok"] is False  # type: ignore[index]
    shown = status_text(lab_dir, capsys)
    assert "regen failed at" in shown
    assert "topology.clab.yml of lab rg: the regenerated lab fails its checks" in shown
    assert "is not a DNS label" in shown


def test_a_validation_failure_shows_in_status(
        lab: tuple[Path, dict[str, object], Path], capsys: pytest.CaptureFixture[str]) -> None:
    path, data, lab_dir = lab
    write(path, edited(data, collide))  # type: ignore[arg-type]
    assert regen(path, lab_dir.parent) == 2
    shown = status_text(lab_dir, capsys)
    assert "the inventory does not validate" in shown
    assert "collides with 'AAR-L1-C1-TT-01' after normalising" in shown


def test_a_write_that_fails_halfway_changes_nothing_and_is_reported(
        lab: tuple[Path, dict[str, object], Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Disk full after a new device's secret and some files were written: all of it goes."""
    path, data, lab_dir = lab
    write(path, edited(data, lambda d: (add_sensor(d), move_sensor(d))))  # type: ignore[arg-type, func-returns-value]
    before = snapshot(lab_dir)
    real = regen_commit.write_temp
    written: list[Path] = []

    def full_disk(target: Path, text: bytes, mode: int | None) -> Path:
        if len(written) == 4:
            raise OSError(28, "No space left on device")
        written.append(target)
        return real(target, text, mode)

    monkeypatch.setattr(regen_commit, "write_temp", full_disk)
    assert regen(path, lab_dir.parent) == 1
    monkeypatch.undo()
    assert any("secrets" in p.parts for p in written)  # a secret was among the writes undone
    assert snapshot(lab_dir) == before  # files and secrets alike
    assert not list(lab_dir.rglob(f"*{regen_commit.TMP_SUFFIX}"))
    assert "No space left on device" in capsys.readouterr().err
    doc = status(lab_dir)
    assert doc["ok"] is False
    assert "nothing was changed" in doc["error"]  # type: ignore[operator]
    assert "No space left on device" in doc["error"]  # type: ignore[operator]
    assert regen(path, lab_dir.parent) == 0  # the disk has room again: the same edit applies
    assert (lab_dir / "secrets" / "devices" / "aar-l1-c1-tt-02.password").exists()


def test_a_lab_left_untold_is_told_by_the_next_regen(
        lab: tuple[Path, dict[str, object], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The files were written but telling the running lab failed: the next regen, with nothing
    new to write, still tells every node."""
    path, data, lab_dir = lab
    calls: list[dict[str, Any]] = []

    def broken(folder: Path, broker: bool, processes: bool) -> list[str]:
        calls.append({"broker": broker, "processes": processes})
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(rg, "reload_running_lab", broken)
    write(path, edited(data, lambda d: set_threshold(d, [18, 25])))  # type: ignore[arg-type]
    assert regen(path, lab_dir.parent) == 1
    doc = status(lab_dir)
    assert doc["ok"] is False
    assert doc["apply_pending"] is True
    assert "the files are written, but telling the running lab failed" in doc["error"]  # type: ignore[operator]
    assert calls == [{"broker": False, "processes": True}]

    def told(folder: Path, broker: bool, processes: bool) -> list[str]:
        calls.append({"broker": broker, "processes": processes})
        return []

    monkeypatch.setattr(rg, "reload_running_lab", told)
    assert regen(path, lab_dir.parent) == 0
    assert calls[1:] == [{"broker": True, "processes": True}]
    assert status(lab_dir)["apply_pending"] is False
    assert regen(path, lab_dir.parent) == 0  # in step and told: nothing more
    assert len(calls) == 2


BROKER_RELOAD = "* broker: reload ACL and passwords (SIGHUP, other clients stay)"


@pytest.mark.parametrize(("change", "untouched", "expected"), [
    pytest.param(move_sensor, 8, [f"> twin {MOVED} moved (hierarchy, topics, uns_path)",
                                  BROKER_RELOAD], id="moved"),
    pytest.param(add_sensor, 9, ["+ twin aar-l1-c1-tt-02 (new device: credentials, ACL, twin, "
                                 "emulator)", BROKER_RELOAD], id="added"),
    pytest.param(lambda d: remove_device(d, "AAR-L1-C1-VT-01"), 8,
                 ["- twin aar-l1-c1-vt-01 (twin and emulator stop, credentials and ACL go)",
                  BROKER_RELOAD], id="removed"),
    pytest.param(lambda d: set_threshold(d, [18, 25]), 7,
                 [f"~ twin {MOVED} reconfigured (metrics)",
                  "~ twin aar-l3-c1-tt-01 reconfigured (metrics)"], id="reconfigured"),
])
def test_diff_shows_what_each_running_object_would_go_through(
        lab: tuple[Path, dict[str, object], Path], capsys: pytest.CaptureFixture[str],
        change: Any, untouched: int, expected: list[str]) -> None:
    path, data, lab_dir = lab
    write(path, edited(data, change))  # type: ignore[arg-type]
    before = snapshot(lab_dir)
    capsys.readouterr()
    assert main(["diff", "--inventory", str(path), "--labs-dir", str(lab_dir.parent)]) == 1
    out = capsys.readouterr().out
    files, _, running = out.partition("# running lab, if regenerated now")
    assert "--- a/manifest.json" in files  # the per-file diff comes first
    assert running.splitlines() == [f" ({untouched} twins untouched):",
                                    *(f"#   {line}" for line in expected)]
    assert snapshot(lab_dir) == before  # a diff writes nothing, not even secrets


def test_diff_of_an_unchanged_lab_says_nothing(
        lab: tuple[Path, dict[str, object], Path], capsys: pytest.CaptureFixture[str]) -> None:
    path, _, lab_dir = lab
    capsys.readouterr()
    assert main(["diff", "--inventory", str(path), "--labs-dir", str(lab_dir.parent)]) == 0
    assert capsys.readouterr().out == ""


def test_a_lab_on_containerlab_gets_the_commands_that_apply_the_regen(
        lab: tuple[Path, dict[str, object], Path], capsys: pytest.CaptureFixture[str]) -> None:
    """No local process to signal: regen prints the containerlab commands, in order."""
    path, data, lab_dir = lab
    (lab_dir / "run" / "provider.json").write_text(json.dumps({"provider": "clab"}))
    write(path, edited(data, lambda d: (move_sensor(d), add_sensor(d))))  # type: ignore[arg-type, func-returns-value]
    capsys.readouterr()
    assert regen(path, lab_dir.parent) == 0
    out = capsys.readouterr().out.splitlines()
    topology = lab_dir.resolve() / "topology.clab.yml"
    start = out.index("the lab runs under containerlab: apply the change with (containerlab "
                      "0.78 or later; on 0.77 use `apply` instead of `deploy`)")
    assert out[start + 1:] == [
        f"  dtnlab clab prepare --labs-dir {lab_dir.resolve().parent} --lab {lab_dir.name}",
        f"  containerlab restart -t {topology} --node broker,{MOVED}",
        f"  containerlab deploy -t {topology}",
        "  docker kill -s HUP clab-rg-twin-engine clab-rg-api"]
    assert "the lab is not running" not in "\n".join(out)
    write(path, edited(data, lambda d: (move_sensor(d), add_sensor(d),  # type: ignore[arg-type, func-returns-value]
                                        device(d, "AAR-L1-C1-PLC-01").update(serial="SN-NEW"))))
    assert regen(path, lab_dir.parent) == 0  # the ansible inventory only: nothing to run
    out = capsys.readouterr().out.splitlines()
    assert "  ~ ansible/inventory.yml" in out
    assert out[-1] == "the lab runs under containerlab: its nodes need nothing"
