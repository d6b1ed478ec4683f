"""The writer: atomic, idempotent, removes stale files, keeps secrets private and stable."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from dtnlab.cli import main
from tests.conftest import DEMO_INVENTORY


def generate(labs: Path, inventory: Path = DEMO_INVENTORY) -> int:
    return main(["generate", "--inventory", str(inventory), "--labs-dir", str(labs)])


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in folder.rglob("*") if p.is_file()
    }


def test_second_generate_rewrites_nothing(tmp_path: Path) -> None:
    assert generate(tmp_path) == 0
    first = snapshot(tmp_path / "demo-plant")
    assert generate(tmp_path) == 0
    assert snapshot(tmp_path / "demo-plant") == first  # same bytes, same mtimes


def test_two_fresh_labs_differ_only_in_secret_material(tmp_path: Path) -> None:
    generate(tmp_path / "a")
    generate(tmp_path / "b")
    a, b = snapshot(tmp_path / "a" / "demo-plant"), snapshot(tmp_path / "b" / "demo-plant")
    assert sorted(a) == sorted(b)
    differing = {k for k in a if a[k][0] != b[k][0]}
    assert differing <= {"mosquitto/passwd", "runtime.json", "manifest.json"} | {
        k for k in a if k.startswith(("secrets/", "mosquitto/certs/"))}
    # runtime.json differs in the API users' password hashes only
    runtimes = [json.loads(lab["runtime.json"][0]) for lab in (a, b)]
    for runtime in runtimes:
        for user in runtime["api"]["users"].values():
            user.pop("password_hash")
    assert runtimes[0] == runtimes[1]


def test_secrets_are_private_and_kept(tmp_path: Path) -> None:
    generate(tmp_path)
    secrets = tmp_path / "demo-plant" / "secrets"
    files = [p for p in secrets.rglob("*") if p.is_file()]
    assert files
    keys = [p for p in files if p.suffix in (".key", ".json", ".password")]
    for path in keys:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    before = {p: p.read_bytes() for p in files}
    generate(tmp_path)
    assert {p: p.read_bytes() for p in files} == before


def test_removed_device_files_are_deleted(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    text = DEMO_INVENTORY.read_text()
    inventory.write_text(text)
    generate(tmp_path / "labs", inventory)
    twin = tmp_path / "labs" / "demo-plant" / "twins" / "aar-agv-01.json"
    assert twin.exists()
    inventory.write_text(text.replace("name: AAR-AGV-01\n", "name: AAR-AGV-02\n"))
    generate(tmp_path / "labs", inventory)
    assert not twin.exists()
    assert (twin.parent / "aar-agv-02.json").exists()
    password = tmp_path / "labs" / "demo-plant" / "secrets" / "devices" / "aar-agv-01.password"
    assert not password.exists()


def test_diff_exits_1_until_generated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["diff", "--inventory", str(DEMO_INVENTORY), "--labs-dir", str(tmp_path)]
    assert main(args) == 1
    assert "+++ b/topology.clab.yml" in capsys.readouterr().out
    generate(tmp_path)
    capsys.readouterr()
    assert main(args) == 0
    assert capsys.readouterr().out == ""


def test_no_temporary_files_left(tmp_path: Path) -> None:
    generate(tmp_path)
    assert list((tmp_path / "demo-plant").rglob(".*.tmp")) == []
    assert [p.name for p in tmp_path.iterdir()] == ["demo-plant"]
