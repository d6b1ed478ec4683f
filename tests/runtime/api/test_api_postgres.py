"""The API on PostgreSQL: history, alerts, acks and the audit log through the real database."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from dtnlab.runtime.api import create_app
from tests.runtime.api.labrig import SPIKED, LabRig
from tests.waiting import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto]

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    name = f"dtn_api_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())


@pytest.fixture(scope="module")
def pg_client(tmp_path_factory: pytest.TempPathFactory,
              database_url: str) -> Iterator[tuple[TestClient, LabRig]]:
    with LabRig(tmp_path_factory.mktemp("pg"), database_url=database_url,
                fast_twins=(SPIKED,)) as rig, TestClient(create_app(
                    rig.lab_dir, rig.settings())) as client:
        yield client, rig


def _token(client: TestClient, rig: LabRig, user: str) -> dict[str, str]:
    res = client.post("/auth/token", data={"username": user, "password": rig.passwords()[user]})
    return {"Authorization": f"Bearer {res.json()['access_token']}"}


def test_history_alerts_ack_and_audit_on_postgres(pg_client: tuple[TestClient, LabRig],
                                                  database_url: str) -> None:
    client, rig = pg_client
    operator, admin = _token(client, rig, "operator"), _token(client, rig, "admin")
    health = client.get("/health").json()
    assert health["database"] == {**health["database"], "ok": True, "kind": "postgres"}
    points = wait_for(lambda: client.get(f"/twins/{SPIKED}/history", headers=operator).json()[
        "points"], what="history from PostgreSQL")
    assert all(abs(p["ts"] - time.time()) < 600 for p in points)
    buckets = client.get(f"/twins/{SPIKED}/history?bucket=10", headers=operator).json()
    assert sum(p["count"] for p in buckets["points"]) >= len(points)

    rig.fault(SPIKED, "spike", samples=6)
    alert = wait_for(lambda: next((a for a in client.get(
        "/alerts", headers=operator).json()["items"] if a["device"] == SPIKED), None),
        what="the alert in PostgreSQL")
    res = client.post(f"/alerts/{alert['id']}/ack", headers=operator)
    assert res.status_code == 200
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT acked_by FROM alerts WHERE id = %s", (alert["id"],)).fetchone()
        assert row == ("operator",)
        audit = conn.execute("SELECT action, user_name FROM api_audit WHERE target = %s",
                             (alert["id"],)).fetchall()
        assert audit == [("ack", "operator")]
    entries = client.get("/audit?action=ack", headers=admin).json()["items"]
    assert entries[0]["target"] == alert["id"]
