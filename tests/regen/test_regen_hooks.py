"""The webhook receiver: NetBox's signature, the lab's selection, and bursts coalesced."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from dtnlab.runtime.api import create_app
from dtnlab.runtime.api.settings import Settings
from dtnlab.runtime.hooks import SECRET_FILE, Selection, relevant, signature, signature_ok
from tests.regen.regenlab import device, edited, inventory, regen, write
from tests.waiting import wait_for

SECRET = b"a-webhook-secret-for-tests-only-0123456789"
SELECTION = Selection(sites=frozenset({"plant-aarhus"}), device_ids=frozenset({1, 2}),
                      device_names=frozenset({"AAR-L1-C1-TT-01", "AAR-L1-SW-01"}))


def event(kind: str, data: dict[str, Any], pre: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"event": "updated", "object_type": kind, "data": data,
            "snapshots": {"prechange": pre, "postchange": None}}


def test_signature_is_netbox_hmac_sha512() -> None:
    body = b'{"event": "updated"}'
    good = signature(SECRET, body)
    assert len(good) == 128
    assert signature_ok(SECRET, body, good)
    assert signature_ok(SECRET, body, good.upper())  # hex is hex
    assert not signature_ok(SECRET, body + b" ", good)
    assert not signature_ok(SECRET, body, None)
    assert not signature_ok(SECRET, body, "")
    assert not signature_ok(b"", body, signature(b"", body))  # no secret: nothing is trusted


@pytest.mark.parametrize(("body", "expected"), [
    pytest.param(event("dcim.device", {"id": 9, "site": {"slug": "plant-brno"}}), False,
                 id="device-in-another-site"),
    pytest.param(event("dcim.device", {"id": 9, "site": {"slug": "plant-aarhus"}}), True,
                 id="new-device-in-the-site"),
    pytest.param(event("dcim.device", {"id": 1, "site": {"slug": "plant-brno"}}), True,
                 id="lab-device-moved-out"),
    pytest.param(event("dcim.rack", {"id": 3, "site": {"slug": "plant-brno"}}), False,
                 id="rack-elsewhere"),
    pytest.param(event("dcim.site", {"slug": "plant-aarhus"}), True, id="the-site"),
    pytest.param(event("dcim.site", {"slug": "elsewhere"}), False, id="another-site"),
    pytest.param(event("dcim.interface", {"device": {"id": 2, "name": "AAR-L1-SW-01"}}), True,
                 id="interface-of-a-lab-device"),
    pytest.param(event("dcim.interface", {"device": {"id": 77, "name": "BRQ-SW-01"}}), False,
                 id="interface-elsewhere"),
    pytest.param(event("dcim.cable", {"a_terminations": [{"object": {"device": {"id": 77}}}],
                                      "b_terminations": [{"object": {"device": {"id": 1}}}]}),
                 True, id="cable-to-a-lab-device"),
    pytest.param(event("dcim.cable", {"a_terminations": [{"object": {"device": {"id": 77}}}],
                                      "b_terminations": [{"object": {"device": {"id": 78}}}]}),
                 False, id="cable-elsewhere"),
    pytest.param(event("ipam.ipaddress", {"assigned_object": {"device": {"id": 78}}}), False,
                 id="address-elsewhere"),
    pytest.param(event("ipam.ipaddress", {"assigned_object": None},
                       {"assigned_object_id": 5}), True, id="address-unassigned"),
    pytest.param(event("extras.configcontext", {"id": 4}), True, id="config-context"),
    pytest.param(event("extras.tag", {"id": 4}), True, id="tag"),
])
def test_selection(body: dict[str, Any], expected: bool) -> None:
    assert relevant(body, SELECTION) is expected


def test_tenant_and_tag_selections_filter_devices() -> None:
    sel = Selection(tenant="northwind", tags=frozenset({"line-a"}))
    data = {"id": 5, "tenant": {"slug": "northwind"}, "tags": [{"slug": "line-a"}]}
    assert relevant(event("dcim.device", data), sel)
    assert not relevant(event("dcim.device", {**data, "tags": [{"slug": "line-b"}]}), sel)
    assert not relevant(event("dcim.device", {**data, "tenant": None}), sel)


@pytest.fixture
def hooked_lab(tmp_path: Path) -> tuple[TestClient, Path, Path]:
    """A generated lab (not running), its regen source recorded, and its API app."""
    path, _ = inventory(tmp_path)
    labs = tmp_path / "labs"
    assert regen(path, labs) == 0
    lab_dir = labs / "rg"
    (lab_dir / SECRET_FILE).write_bytes(SECRET)
    (lab_dir / "run" / "regen-source.json").write_text(json.dumps({
        "argv": ["--inventory", str(path), "--labs-dir", str(labs), "--lab", "rg", "--wait", "0"],
        "cwd": str(tmp_path), "selection": {"sites": ["plant-aarhus"]}, "devices": {},
        "device_names": ["AAR-L1-C1-TT-01"]}))
    (lab_dir / "run" / "regen.json").unlink()
    app = create_app(lab_dir, Settings(database_url=None), connect=False)
    return TestClient(app), lab_dir, path


def last_regen(client: TestClient, lab_dir: Path) -> dict[str, Any]:
    """GET /regen as the lab's admin."""
    users = json.loads((lab_dir / "secrets" / "api-users.json").read_text())
    token = client.post("/auth/token", data={"username": "admin", "password": users["admin"]})
    answer = client.get("/regen", headers={
        "Authorization": f"Bearer {token.json()['access_token']}"})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def settle(client: TestClient) -> Any:
    """Wait for the scheduled regen to run and end; the app's scheduler."""
    scheduler = client.app.state.regen_scheduler  # type: ignore[attr-defined]
    wait_for(lambda: scheduler.stats.regens >= 1 and not scheduler.stats.running, 60.0,
             "the scheduled regen to end")
    return scheduler


def post(client: TestClient, body: dict[str, Any], sign: bytes | None = SECRET,
         header: str | None = None) -> Any:
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["X-Hook-Signature"] = header
    elif sign is not None:
        headers["X-Hook-Signature"] = signature(sign, raw)
    return client.post("/hooks/netbox", content=raw, headers=headers)


def wait_file(path: Path, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_forged_or_unsigned_webhooks_are_refused(hooked_lab: tuple[TestClient, Path, Path]) -> None:
    client, lab_dir, _ = hooked_lab
    body = event("extras.configcontext", {"id": 1})
    with client:
        for response in (post(client, body, sign=None), post(client, body, sign=b"wrong"),
                         post(client, body, header="00" * 64)):
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "unauthorized"
        time.sleep(1.0)
        assert client.app.state.regen_scheduler.stats.refused == 3  # type: ignore[attr-defined]
        assert client.app.state.regen_scheduler.stats.regens == 0  # type: ignore[attr-defined]
    assert not (lab_dir / "run" / "regen.json").exists()


def test_a_burst_of_events_is_one_regen(hooked_lab: tuple[TestClient, Path, Path]) -> None:
    client, lab_dir, path = hooked_lab
    with client:
        answers = [post(client, event("dcim.interface", {"device": {"id": 1, "name": n}}))
                   for n in ("AAR-L1-C1-TT-01", "x", "y")]
        ignored = post(client, event("dcim.device", {"id": 99, "site": {"slug": "other"}}))
        answers += [post(client, event("extras.configcontext", {"id": 1})) for _ in range(3)]
        assert [a.status_code for a in answers] == [202] * 6
        assert ignored.json() == {"relevant": False, "scheduled": False}
        doc = wait_file(lab_dir / "run" / "regen.json")
        scheduler = client.app.state.regen_scheduler  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while scheduler.stats.running and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # a second regen would have started by now
        assert scheduler.stats.regens == 1
        assert scheduler.stats.accepted == 4  # "x" and "y" are no lab devices
        assert scheduler.stats.ignored == 3
    assert doc["ok"] is True
    assert doc["trigger"] == "webhook"
    assert "--trigger webhook" in (lab_dir / "run" / "logs" / "regen.log").read_text()
    argv, cwd = scheduler.command()  # the regen runs with this interpreter, as `up` recorded
    assert argv[:4] == [sys.executable, "-m", "dtnlab", "regen"]
    assert cwd == path.parent


def test_a_webhook_regen_that_fails_to_render_is_reported(
        hooked_lab: tuple[TestClient, Path, Path]) -> None:
    """The edit validates but the topology refuses it: run/regen.json and GET /regen say so."""
    client, lab_dir, path = hooked_lab
    twin = (lab_dir / "twins" / "aar-l1-c1-plc-01.json").read_bytes()
    data = yaml.safe_load(path.read_text())
    write(path, edited(data, lambda d: device(d, "AAR-L1-C1-PLC-01").update(
        name="AAR-L1-C1-PLC-01-" + "X" * 50)))
    with client:
        assert post(client, event("extras.configcontext", {"id": 1})).status_code == 202
        scheduler = settle(client)
        assert scheduler.stats.last_regen_exit == 2
        last = last_regen(client, lab_dir)
    assert last["last"]["ok"] is False
    assert last["last"]["trigger"] == "webhook"
    assert last["last"]["error"] == ("topology.clab.yml of lab rg: the regenerated lab fails "
                                     "its checks")
    assert "is not a DNS label" in last["last"]["problems"][0]
    assert last["last"] == json.loads((lab_dir / "run" / "regen.json").read_text())
    assert last["webhook"]["last_regen_exit"] == 2
    assert (lab_dir / "twins" / "aar-l1-c1-plc-01.json").read_bytes() == twin


def test_a_webhook_regen_that_cannot_start_is_reported(
        hooked_lab: tuple[TestClient, Path, Path]) -> None:
    """A lab without run/regen-source.json cannot regenerate: recorded, not only logged."""
    client, lab_dir, _ = hooked_lab
    (lab_dir / "run" / "regen-source.json").unlink()
    with client:
        assert post(client, event("extras.configcontext", {"id": 1})).status_code == 202
        assert settle(client).stats.last_regen_exit == -1
        last = last_regen(client, lab_dir)["last"]
    assert last["ok"] is False
    assert last["trigger"] == "webhook"
    assert "regen-source.json: missing" in last["error"]
    assert last["error"].startswith("the regen could not start")


def test_a_webhook_regen_that_crashes_is_reported_with_its_output(
        hooked_lab: tuple[TestClient, Path, Path]) -> None:
    """The regen dies before it can record anything (here: an option it does not know)."""
    client, lab_dir, _ = hooked_lab
    source_file = lab_dir / "run" / "regen-source.json"
    source = json.loads(source_file.read_text())
    source["argv"].append("--no-such-option")
    source_file.write_text(json.dumps(source))
    with client:
        assert post(client, event("extras.configcontext", {"id": 1})).status_code == 202
        assert settle(client).stats.last_regen_exit == 2
        last = last_regen(client, lab_dir)["last"]
    assert last["ok"] is False
    assert last["error"] == ("the regen exited with code 2 before it recorded the attempt "
                             "(see run/logs/regen.log)")
    assert any("unrecognized arguments: --no-such-option" in p for p in last["problems"])


@pytest.mark.parametrize(("change", "expected"), [
    pytest.param({"changed_object_type": "dcim.device", "changed_object_id": 5,
                  "postchange_data": {"site": 9}}, False, id="device-elsewhere"),
    pytest.param({"changed_object_type": "dcim.device", "changed_object_id": 5,
                  "postchange_data": {"site": 1}}, True, id="device-in-the-site"),
    pytest.param({"changed_object_type": "dcim.device", "changed_object_id": 1,
                  "prechange_data": {"site": 1}, "postchange_data": None}, True,
                 id="lab-device-deleted"),
    pytest.param({"changed_object_type": "dcim.interface", "changed_object_id": 50,
                  "postchange_data": {"device": 77}}, False, id="interface-elsewhere"),
    pytest.param({"changed_object_type": "dcim.interface", "changed_object_id": 50,
                  "postchange_data": {"device": 1}}, True, id="interface-of-the-lab"),
    pytest.param({"changed_object_type": "dcim.cabletermination", "changed_object_id": 3,
                  "postchange_data": {"termination_id": 11}}, True, id="cable-end-of-the-lab"),
    pytest.param({"changed_object_type": "extras.configcontext", "changed_object_id": 3},
                 True, id="config-context"),
    pytest.param({"changed_object_type": "users.token", "changed_object_id": 3}, False,
                 id="unrelated-type"),
])
def test_change_log_entries(change: dict[str, Any], expected: bool) -> None:
    from dtnlab.inventory.netbox_hooks import WatchScope, change_relevant

    scope = WatchScope(site_ids=frozenset({1}), device_ids=frozenset({1, 2}),
                       interface_ids=frozenset({11}))
    assert change_relevant(change, scope) is expected
