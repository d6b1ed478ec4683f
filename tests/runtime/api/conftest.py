"""Fixtures of the API tests: one running demo lab for the session, the app, a token per role."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from dtnlab.runtime.api import create_app
from tests.runtime.api.labrig import ROLES, SPIKED, WS_SPIKED, LabRig


@pytest.fixture(scope="session")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRig]:
    with LabRig(tmp_path_factory.mktemp("api"), fast_twins=(SPIKED, WS_SPIKED)) as rig:
        yield rig


@pytest.fixture(scope="session")
def client(rig: LabRig) -> Iterator[TestClient]:
    with TestClient(create_app(rig.lab_dir, rig.settings())) as client:
        yield client


@pytest.fixture(scope="session")
def tokens(client: TestClient, rig: LabRig) -> dict[str, str]:
    passwords = rig.passwords()
    issued = {}
    for role in ROLES:
        res = client.post("/auth/token", data={"username": role, "password": passwords[role]})
        assert res.status_code == 200, res.text
        issued[role] = res.json()["access_token"]
    return issued


@pytest.fixture(scope="session")
def auth(tokens: dict[str, str]) -> Callable[[str], dict[str, str]]:
    def headers(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[role]}"}

    return headers
