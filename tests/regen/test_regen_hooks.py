"""The webhook receiver: NetBox's signature, the lab's selection, and bursts coalesced."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dtnlab.runtime.api.errors import install_error_handlers
from dtnlab.runtime.hooks import SECRET_FILE, Selection, relevant, router, signature, signature_ok
from tests.regen.regenlab import inventory, regen

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
    """A generated lab (not running), its regen source recorded, and an app with the router."""
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
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.state.api = SimpleNamespace(lab=SimpleNamespace(root=lab_dir))
    return TestClient(app), lab_dir, path


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
    client, lab_dir, _ = hooked_lab
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
    assert sys.executable  # the regen ran with this interpreter


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
