"""Rate limits (429 with Retry-After), body size limits (413), the one error shape."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from dtnlab.runtime.api import create_app
from dtnlab.runtime.api.ratelimit import RateLimiter
from tests.runtime.api.labrig import LabRig, assert_error

pytestmark = pytest.mark.mosquitto


@pytest.fixture
def strict(rig: LabRig) -> Iterator[TestClient]:
    settings = rig.settings(rate_per_s=1, rate_burst=20, token_rate_per_s=1, token_rate_burst=5,
                            login_rate_per_s=0.1, login_burst=3, max_body_bytes=2048)
    with TestClient(create_app(rig.lab_dir, settings, connect=False)) as client:
        yield client


def _login(client: TestClient, rig: LabRig, user: str = "viewer") -> str:
    res = client.post("/auth/token", data={"username": user, "password": rig.passwords()[user]})
    assert res.status_code == 200, res.text
    return str(res.json()["access_token"])


def test_per_token_limit_is_429_with_retry_after(strict: TestClient, rig: LabRig) -> None:
    headers = {"Authorization": f"Bearer {_login(strict, rig)}"}
    statuses = [strict.get("/hierarchy", headers=headers).status_code for _ in range(8)]
    assert statuses[:5] == [200] * 5
    assert statuses[-1] == 429
    res = strict.get("/hierarchy", headers=headers)
    assert res.status_code == 429
    assert int(res.headers["retry-after"]) >= 1
    assert_error(res.json(), 429, "rate_limited")
    # another token of the same client still gets through
    other = {"Authorization": f"Bearer {_login(strict, rig, 'operator')}"}
    assert strict.get("/hierarchy", headers=other).status_code == 200


def test_per_client_limit(strict: TestClient) -> None:
    statuses = [strict.get("/health").status_code for _ in range(25)]
    assert 429 in statuses
    assert statuses[0] == 200


def test_login_attempts_are_limited(strict: TestClient) -> None:
    statuses = [strict.post("/auth/token", data={"username": "admin",
                                                  "password": "guess-guess-guess"}).status_code
                for _ in range(5)]
    assert statuses[:3] == [401] * 3
    assert statuses[3:] == [429, 429]


def test_body_over_the_limit_is_413(strict: TestClient, rig: LabRig) -> None:
    headers = {"Authorization": f"Bearer {_login(strict, rig, 'operator')}"}
    big = {"command": "ping", "args": {"blob": "x" * 5000}}
    res = strict.post("/twins/aar-l1-c1-tt-01/commands", json=big, headers=headers)
    assert res.status_code == 413
    assert_error(res.json(), 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        yield b'{"command": "ping", "args": {"blob": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}}'

    res = strict.post("/twins/aar-l1-c1-tt-01/commands", content=chunks(),
                      headers={**headers, "Content-Type": "application/json"})
    assert res.status_code == 413


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/no/such/route", 404), ("DELETE", "/twins", 405), ("PUT", "/health", 405)],
    ids=["404", "405", "405-health"])
def test_framework_errors_have_the_same_shape(client: TestClient, method: str, path: str,
                                              status: int) -> None:
    res = client.request(method, path)
    assert res.status_code == status
    assert_error(res.json(), status)


def test_unexpected_error_is_a_500_in_the_same_shape(rig: LabRig) -> None:
    app = create_app(rig.lab_dir, rig.settings(), connect=False)

    def boom() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        res = client.get("/boom")
    assert res.status_code == 500
    assert_error(res.json(), 500, "internal_error")
    assert "secret" not in res.text


def test_security_headers(client: TestClient) -> None:
    res = client.get("/health")
    assert res.headers["x-content-type-options"] == "nosniff"
    assert res.headers["cache-control"] == "no-store"
    page = client.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_token_bucket_refills() -> None:
    limiter = RateLimiter(rate=2.0, burst=2)
    assert [limiter.hit("k", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.5]
    assert limiter.hit("k", now=0.5) == 0.0
    assert limiter.hit("other", now=0.5) == 0.0
