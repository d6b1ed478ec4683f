"""Auth: logins, and every kind of bad token refused with 401 (HTTP and WebSocket)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from dtnlab.runtime.api import create_app
from dtnlab.runtime.api.audit import AuditQuery
from tests.runtime.api.labrig import ROLES, LabRig, assert_error

pytestmark = pytest.mark.mosquitto


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(rig: LabRig, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": "admin", "role": "admin", "iss": "dtnlab/demo-plant",
              "aud": "dtnlab-api/demo-plant", "iat": now, "nbf": now, "exp": now + 600,
              "jti": "t1"}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _key(rig: LabRig) -> str:
    return (rig.lab_dir / "secrets" / "api-jwt.key").read_text().strip()


def _unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _hs256_with(secret: bytes, claims: dict[str, Any]) -> str:
    """HS256 by hand: PyJWT refuses a PEM key as an HMAC secret, an attacker does not."""
    signing = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}." \
              f"{_b64(json.dumps(claims).encode())}"
    sig = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{_b64(sig)}"


BAD_TOKENS: dict[str, Callable[[LabRig], str]] = {
    "expired": lambda rig: jwt.encode(_claims(rig, iat=int(time.time()) - 7200,
                                              nbf=int(time.time()) - 7200,
                                              exp=int(time.time()) - 3600), _key(rig), "HS256"),
    "forged": lambda rig: jwt.encode(_claims(rig), "a-forged-key-that-is-long-enough-0123456789",
                                     "HS256"),
    "wrong-audience": lambda rig: jwt.encode(_claims(rig, aud="someone-else"), _key(rig),
                                             "HS256"),
    "wrong-issuer": lambda rig: jwt.encode(_claims(rig, iss="evil"), _key(rig), "HS256"),
    "alg-none": lambda rig: _unsigned(_claims(rig)),
    "alg-None-capitalised": lambda rig: _unsigned(_claims(rig), "None"),
    "no-expiry": lambda rig: jwt.encode(_claims(rig, exp=None), _key(rig), "HS256"),
    "unknown-user": lambda rig: jwt.encode(_claims(rig, sub="mallory"), _key(rig), "HS256"),
    "role-raised": lambda rig: jwt.encode(_claims(rig, sub="viewer", role="admin"), _key(rig),
                                          "HS256"),
    "not-yet-valid": lambda rig: jwt.encode(_claims(rig, nbf=int(time.time()) + 600),
                                            _key(rig), "HS256"),
    "garbage": lambda rig: "not.a.token",
    "tampered": lambda rig: jwt.encode(_claims(rig, role="viewer", sub="viewer"), _key(rig),
                                       "HS256").replace(".", ".x", 1),
}


@pytest.mark.parametrize("role", ROLES)
def test_login_gives_a_token_for_each_role(client: TestClient, rig: LabRig, role: str) -> None:
    res = client.post("/auth/token", data={"username": role,
                                           "password": rig.passwords()[role]})
    assert res.status_code == 200
    body = res.json()
    assert body["role"] == role
    assert body["token_type"] == "bearer"
    claims = jwt.decode(body["access_token"], _key(rig), algorithms=["HS256"],
                        audience="dtnlab-api/demo-plant")
    assert claims["sub"] == role
    assert claims["iss"] == "dtnlab/demo-plant"
    assert claims["exp"] - claims["iat"] == 3600
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["role"] == role


@pytest.mark.parametrize(("user", "password"), [("operator", "wrong-password-123"),
                                                ("nobody", "whatever-it-is-123")],
                         ids=["wrong-password", "unknown-user"])
def test_bad_login_is_401_and_audited(client: TestClient, user: str, password: str) -> None:
    since = time.time()
    res = client.post("/auth/token", data={"username": user, "password": password})
    assert res.status_code == 401
    assert_error(res.json(), 401, "unauthorized")
    assert res.headers["www-authenticate"].startswith("Bearer")
    entries = client.app.state.api.audit.query(AuditQuery(action="login", user=user, since=since))
    assert [(e["user"], e["target"], e["outcome"]) for e in entries] == [(user, user, "failed")]


def test_empty_password_is_422(client: TestClient) -> None:
    res = client.post("/auth/token", data={"username": "operator", "password": ""})
    assert res.status_code == 422
    assert_error(res.json(), 422)


def test_missing_token_is_401(client: TestClient) -> None:
    res = client.get("/twins")
    assert res.status_code == 401
    assert_error(res.json(), 401, "unauthorized")
    assert res.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_bad_token_is_401(client: TestClient, rig: LabRig, kind: str) -> None:
    token = BAD_TOKENS[kind](rig)
    res = client.get("/twins", headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 401, res.text
    assert_error(res.json(), 401, "unauthorized")


@pytest.mark.parametrize("kind", ["expired", "forged", "wrong-audience", "alg-none"])
def test_bad_token_is_refused_on_the_websocket(client: TestClient, rig: LabRig,
                                               kind: str) -> None:
    token = BAD_TOKENS[kind](rig)
    with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect(
            "/ws", subprotocols=["dtnlab.v1", f"bearer.{token}"]):
        pass
    assert denied.value.status_code == 401


def test_websocket_without_token_is_refused(client: TestClient) -> None:
    with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect("/ws"):
        pass
    assert denied.value.status_code == 401
    assert_error(denied.value.json(), 401)


def test_rs256_tokens_and_no_algorithm_confusion(rig: LabRig, tmp_path: Path) -> None:
    app = create_app(rig.lab_dir, rig.settings(jwt_algorithm="RS256"), connect=False)
    with TestClient(app) as client:
        res = client.post("/auth/token", data={"username": "viewer",
                                               "password": rig.passwords()["viewer"]})
        token = res.json()["access_token"]
        assert jwt.get_unverified_header(token)["alg"] == "RS256"
        assert client.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).json()[
            "user"] == "viewer"
        public_pem = app.state.api.tokens.public_key_pem()
        key_file = rig.lab_dir / "secrets/api-jwt-rs256.pem"
        assert public_pem
        assert key_file.stat().st_mode & 0o077 == 0
        confused = _hs256_with(public_pem.encode(), _claims(rig))
        hs = jwt.encode(_claims(rig), _key(rig), "HS256")
        for bad in (confused, hs, _unsigned(_claims(rig))):
            res = client.get("/twins", headers={"Authorization": f"Bearer {bad}"})
            assert res.status_code == 401


def test_issuer_and_audience_come_from_settings(rig: LabRig) -> None:
    settings = rig.settings(jwt_issuer="plant-sso", jwt_audience="plant-api")
    with TestClient(create_app(rig.lab_dir, settings, connect=False)) as client:
        token = client.post("/auth/token", data={
            "username": "viewer", "password": rig.passwords()["viewer"]}).json()["access_token"]
        claims = jwt.decode(token, _key(rig), algorithms=["HS256"], audience="plant-api")
        assert claims["iss"] == "plant-sso"
        default = jwt.encode(_claims(rig), _key(rig), "HS256")  # the lab's default audience
        assert client.get("/twins", headers={"Authorization": f"Bearer {default}"}
                          ).status_code == 401
