"""Roles: what viewer, operator and admin may do on every route; no route but /health is open."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.runtime.api.labrig import ROLES, SERVICED, assert_error

pytestmark = pytest.mark.mosquitto

TWIN = "aar-l2-c2-tt-01"
READ = {"viewer": 200, "operator": 200, "admin": 200}
WRITE = {"viewer": 403, "operator": 200, "admin": 200}
ADMIN = {"viewer": 403, "operator": 403, "admin": 200}
# (method, path, body, expected status by role)
MATRIX: list[tuple[str, str, dict[str, Any] | None, dict[str, int]]] = [
    ("GET", "/auth/me", None, READ),
    ("GET", "/twins", None, READ),
    ("GET", f"/twins/{TWIN}", None, READ),
    ("GET", f"/twins/{TWIN}/history", None, READ),
    ("GET", "/alerts", None, READ),
    ("GET", "/hierarchy", None, READ),
    ("GET", "/topology", None, READ),
    ("GET", "/metrics", None, READ),
    ("POST", f"/twins/{TWIN}/commands", {"command": "ping"}, WRITE),
    ("POST", f"/twins/{TWIN}/maintenance", {"action": "leave"}, WRITE),
    ("POST", "/alerts/no-such-alert/ack", None, {"viewer": 403, "operator": 404, "admin": 404}),
    ("GET", "/audit", None, ADMIN),
]


@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX,
                         ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(client: TestClient, auth: Callable[[str], dict[str, str]], role: str,
                     method: str, path: str, body: dict[str, Any] | None,
                     expected: dict[str, int]) -> None:
    res = client.request(method, path, json=body, headers=auth(role))
    assert res.status_code == expected[role], res.text
    if res.status_code >= 400:
        assert_error(res.json(), res.status_code)
    if res.status_code == 403:
        assert res.json()["error"]["code"] == "forbidden"


def test_viewer_command_is_403_and_never_sent(client: TestClient,
                                              auth: Callable[[str], dict[str, str]]) -> None:
    audit_before = client.get("/audit?action=command", headers=auth("admin")).json()["items"]
    res = client.post(f"/twins/{SERVICED}/commands", json={"command": "reboot"},
                      headers=auth("viewer"))
    assert res.status_code == 403
    assert "operator" in res.json()["error"]["message"]
    audit_after = client.get("/audit?action=command", headers=auth("admin")).json()["items"]
    assert audit_after == audit_before


# /auth/token takes a password; NetBox signs /hooks/netbox with HMAC (it sends no bearer).
NO_BEARER = ("/health", "/auth/token", "/hooks/netbox")


def test_every_route_but_health_needs_a_token(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    checked = 0
    for path, operations in schema["paths"].items():
        for method in operations:
            if path in NO_BEARER:
                continue
            concrete = path.replace("{twin_id}", TWIN).replace("{alert_id}", "x")
            res = client.request(method.upper(), concrete, json={})
            assert res.status_code == 401, f"{method} {path}: {res.status_code}"
            assert_error(res.json(), 401)
            checked += 1
    assert checked >= 12
    assert client.get("/health").status_code == 200
    unsigned = client.post("/hooks/netbox", json={"event": "updated"})
    assert unsigned.status_code == 401
    assert_error(unsigned.json(), 401)


def test_openapi_declares_bearer_security_on_every_protected_route(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["type"] == "oauth2"
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            if path not in NO_BEARER:
                assert op.get("security"), f"{method} {path} declares no security"
