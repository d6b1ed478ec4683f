"""The reconcile plan: which twins a regen adds, removes, moves, reconfigures or leaves alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dtnlab.runtime.labfiles import TwinConfig, load_lab
from dtnlab.runtime.reconcile import broker_changed, plan_twins
from tests.regen.regenlab import (
    MOVED,
    add_sensor,
    edited,
    inventory,
    move_sensor,
    regen,
    remove_device,
    set_threshold,
    write,
)


@pytest.fixture(scope="module")
def before(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, TwinConfig]]:
    folder = tmp_path_factory.mktemp("plan")
    path, _ = inventory(folder)
    assert regen(path, folder / "labs") == 0
    return folder, dict(load_lab(folder / "labs" / "rg").twins)


def twins_after(folder: Path, change: object) -> dict[str, TwinConfig]:
    """The twins the lab would have after an edit, generated into a copy of the lab."""
    _, data = inventory(folder / "edit")
    data = edited(data, change)  # type: ignore[arg-type]
    path = write(folder / "edit" / "inventory.yaml", data)
    assert regen(path, folder / "edit" / "labs") == 0
    return dict(load_lab(folder / "edit" / "labs" / "rg").twins)


def test_identical_lab_plans_nothing(before: tuple[Path, dict[str, TwinConfig]]) -> None:
    _, twins = before
    plan = plan_twins(twins, dict(twins))
    assert plan.empty
    assert plan.unchanged == tuple(sorted(twins))


@pytest.mark.parametrize(("change", "kind"), [
    pytest.param(move_sensor, "moved", id="new-rack-is-a-move"),
    pytest.param(lambda d: set_threshold(d, [18, 25]), "reconfigured", id="threshold"),
    pytest.param(add_sensor, "added", id="new-device"),
    pytest.param(lambda d: remove_device(d, "AAR-L1-C1-VT-01"), "removed", id="deleted-device"),
])
def test_each_edit_touches_only_its_twins(before: tuple[Path, dict[str, TwinConfig]],
                                          tmp_path: Path, change: object, kind: str) -> None:
    folder, twins = before
    after = twins_after(tmp_path, change)
    plan = plan_twins(twins, after)
    expected = {"moved": (MOVED,), "reconfigured": ("aar-l1-c1-tt-01", "aar-l3-c1-tt-01"),
                "added": ("aar-l1-c1-tt-02",), "removed": ("aar-l1-c1-vt-01",)}[kind]
    assert getattr(plan, kind) == expected
    assert set(plan.touched) == set(expected)
    assert set(plan.unchanged) == set(twins) - set(expected)
    if kind == "moved":
        assert plan.details[MOVED] == ["hierarchy", "topics", "uns_path"]
        assert plan.reconfigured == ()


def test_a_move_with_new_thresholds_is_both(before: tuple[Path, dict[str, TwinConfig]],
                                            tmp_path: Path) -> None:
    _, twins = before
    after = twins_after(tmp_path, lambda d: (move_sensor(d), set_threshold(d, [18, 25])))
    plan = plan_twins(twins, after)
    assert MOVED in plan.moved
    assert MOVED in plan.reconfigured
    assert any("moved and reconfigured" in line for line in plan.lines())


def test_broker_reload_follows_acl_or_passwd_digests() -> None:
    same = {"mosquitto/acl": "a", "mosquitto/passwd": "p"}
    assert not broker_changed(same, dict(same))
    assert broker_changed(same, {**same, "mosquitto/acl": "b"})
    assert broker_changed(same, {**same, "mosquitto/passwd": None})


def test_summary_is_json(before: tuple[Path, dict[str, TwinConfig]]) -> None:
    _, twins = before
    fewer = {t: c for t, c in twins.items() if t != MOVED}
    summary = plan_twins(twins, fewer, broker_reload=True).summary()
    assert json.loads(json.dumps(summary))["removed"] == [MOVED]
    assert summary["broker_reload"] is True
