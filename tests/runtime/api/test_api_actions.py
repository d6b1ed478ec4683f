"""Alerts with ack, commands with their acks, maintenance: what operators do, and the audit."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.runtime.api.labrig import SERVICED, SILENCED, SPIKED, LabRig, assert_error
from tests.waiting import wait_for

pytestmark = pytest.mark.mosquitto

Auth = Callable[[str], dict[str, str]]


def _open_alert(client: TestClient, auth: Auth, twin: str) -> dict[str, object] | None:
    items = client.get("/alerts?status=open", headers=auth("viewer")).json()["items"]
    return next((a for a in items if a["device"] == twin and a["kind"] == "threshold"), None)


def test_fault_alert_filter_and_ack(client: TestClient, rig: LabRig, auth: Auth) -> None:
    rig.fault(SPIKED, "spike", samples=8)
    alert = wait_for(lambda: _open_alert(client, auth, SPIKED), what="the spike's alert")
    assert alert["severity"] == "critical"
    assert alert["status"] == "open"
    assert alert["uns_path"] == rig.lab.twins[SPIKED].uns_path
    viewer = auth("viewer")
    line = "northwind/plant-aarhus/processing/line-1"
    assert alert["id"] in {a["id"] for a in client.get(
        f"/alerts?prefix={line}", headers=viewer).json()["items"]}
    assert alert["id"] not in {a["id"] for a in client.get(
        "/alerts?prefix=northwind/plant-brno", headers=viewer).json()["items"]}
    assert alert["id"] in {a["id"] for a in client.get(
        "/alerts?severity=critical", headers=viewer).json()["items"]}
    assert alert["id"] not in {a["id"] for a in client.get(
        "/alerts?severity=info", headers=viewer).json()["items"]}
    twin = wait_for(lambda: (d := client.get(f"/twins/{SPIKED}", headers=viewer).json())[
        "state"] == "critical" and d, what="the twin critical")
    assert alert["id"] in {a["id"] for a in twin["open_alerts"]}

    assert client.post(f"/alerts/{alert['id']}/ack", headers=viewer).status_code == 403
    res = client.post(f"/alerts/{alert['id']}/ack", headers=auth("operator"))
    assert res.status_code == 200
    assert res.json()["acked_by"] == "operator"
    stored = wait_for(lambda: next((a for a in client.get(
        "/alerts?status=all", headers=viewer).json()["items"] if a["id"] == alert["id"]
        and a["acked_by"]), None), what="the ack in storage")
    assert stored["acked_at"] == pytest.approx(res.json()["acked_at"])
    audit = client.get(f"/audit?action=ack&target={alert['id']}", headers=auth("admin")).json()
    assert audit["items"][0]["user"] == "operator"
    assert audit["items"][0]["detail"]["device"] == SPIKED
    # it resolves once the spike is over, and stays acked
    resolved = wait_for(lambda: next((a for a in client.get(
        "/alerts?status=resolved", headers=viewer).json()["items"] if a["id"] == alert["id"]),
        None), timeout=15, what="the alert resolved")
    assert resolved["acked_by"] == "operator"


def test_ack_of_unknown_alert_is_404(client: TestClient, auth: Auth) -> None:
    res = client.post("/alerts/does-not-exist/ack", headers=auth("operator"))
    assert res.status_code == 404
    assert_error(res.json(), 404, "not_found")


@pytest.mark.parametrize(("command", "args", "result", "detail"), [
    ("ping", {}, "acked", "pong"),
    ("setpoint", {"metric": "temperature", "value": 24.0}, "acked", "temperature=24.0"),
    ("setpoint", {"metric": "temperature", "value": 999}, "rejected", "outside"),
    ("no_such_command", {}, "rejected", "unknown command"),
], ids=["ping", "setpoint", "setpoint-out-of-range", "unknown"])
def test_command_waits_for_the_device_ack(client: TestClient, auth: Auth, command: str,
                                          args: dict[str, object], result: str,
                                          detail: str) -> None:
    res = client.post(f"/twins/{SERVICED}/commands", headers=auth("operator"),
                      json={"command": command, "args": args})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["result"] == result
    assert detail in body["detail"]
    assert body["latency_ms"] is not None
    assert body["latency_ms"] < 2000
    audit = client.get(f"/audit?action=command&target={SERVICED}", headers=auth("admin")).json()
    entry = next(e for e in audit["items"] if e["detail"]["id"] == body["id"])
    assert entry["outcome"] == result
    assert entry["detail"]["command"] == command


def test_command_to_an_unreachable_device_times_out(client: TestClient, rig: LabRig,
                                                    auth: Auth) -> None:
    rig.fault(SILENCED, "offline")
    viewer = auth("viewer")
    try:
        wait_for(lambda: client.get(f"/twins/{SILENCED}", headers=viewer).json()[
            "device_status"] == "offline", what="the device offline")
        res = client.post(f"/twins/{SILENCED}/commands", headers=auth("operator"),
                          json={"command": "ping", "timeout_s": 0.5})
        assert res.status_code == 200
        assert res.json()["result"] == "timed_out"
        assert res.json()["latency_ms"] is None
    finally:
        rig.fault(SILENCED, "recover")
    wait_for(lambda: client.get(f"/twins/{SILENCED}", headers=viewer).json()[
        "device_status"] == "online", what="the device back")


@pytest.mark.parametrize("body", [{"command": "Bad Name"}, {"command": "ping", "extra": 1},
                                  {"command": "ping", "timeout_s": 99}, {},
                                  {"command": "setpoint", "args": {"value": 2 ** 64}}],
                         ids=["bad-name", "extra-field", "long-timeout", "empty", "huge-int"])
def test_invalid_command_is_422(client: TestClient, auth: Auth, body: dict[str, object]) -> None:
    res = client.post(f"/twins/{SERVICED}/commands", headers=auth("operator"), json=body)
    assert res.status_code == 422
    assert_error(res.json(), 422, "validation_error")
    assert res.json()["error"]["details"]


def test_maintenance_enter_and_leave(client: TestClient, auth: Auth) -> None:
    operator, viewer = auth("operator"), auth("viewer")
    assert client.post(f"/twins/{SERVICED}/maintenance", json={"action": "enter"},
                       headers=viewer).status_code == 403
    res = client.post(f"/twins/{SERVICED}/maintenance", headers=operator,
                      json={"action": "enter", "reason": "replacing the probe"})
    assert res.status_code == 200, res.text
    assert res.json() == {"twin": SERVICED, "maintenance": True, "by": "operator",
                          "state": "maintenance"}
    detail = client.get(f"/twins/{SERVICED}", headers=viewer).json()
    assert detail["state"] == "maintenance"
    assert detail["maintenance"] == "operator"
    res = client.post(f"/twins/{SERVICED}/maintenance", json={"action": "leave"},
                      headers=operator)
    assert res.status_code == 200
    assert res.json()["maintenance"] is False
    assert res.json()["state"] != "maintenance"
    actions = [e["outcome"] for e in client.get(
        f"/audit?action=maintenance&target={SERVICED}", headers=auth("admin")).json()["items"]]
    assert actions[:2] == ["leave", "enter"]


def test_audit_records_logins_and_filters(client: TestClient, auth: Auth) -> None:
    admin = auth("admin")
    logins = client.get("/audit?action=login&user=admin", headers=admin).json()["items"]
    assert logins
    assert all(e["action"] == "login" and e["user"] == "admin" for e in logins)
    assert logins[0]["client"] == "testclient"
    newest = client.get("/audit?limit=1", headers=admin).json()["items"]
    assert len(newest) == 1
    assert client.get(f"/audit?since={newest[0]['ts'] + 1}", headers=admin).json()["items"] == []
