"""PostgreSQL stopped and restarted under the real ingest path: emulators -> Mosquitto -> engine ->
a throwaway cluster. Every reading, state transition and alert made meanwhile is stored."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dtnlab.runtime.engine import Engine
from dtnlab.runtime.labfiles import LabFiles, load_lab
from dtnlab.runtime.storage import PostgresStore, StorageWriter
from tests.broker import Broker
from tests.runtime.emulator.smalllab import (
    PLC,
    SENSOR,
    apply_fault,
    emulator_totals,
    generate_small_lab,
    start_emulator,
)
from tests.runtime.engine.twinlab import Listener, engine_config
from tests.runtime.storage.pgcluster import Cluster
from tests.waiting import stop_process, wait_for

pytestmark = [pytest.mark.mosquitto, pytest.mark.postgres]

PERIOD_S, HEARTBEAT_S = 0.1, 1.0


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LabFiles]:
    lab_dir = generate_small_lab(tmp_path, period_s=PERIOD_S, heartbeat_s=HEARTBEAT_S,
                                 telemetry_qos=1)
    with Broker(lab_dir):
        yield load_lab(lab_dir)


@pytest.fixture
def engine(lab: LabFiles, cluster: Cluster) -> Iterator[Engine]:
    store = PostgresStore(cluster.url)
    engine = Engine(lab, engine_config(), store=store)
    # a small memory budget, so rows of the outage go through spill files too
    engine.writer = StorageWriter(store, lab.run_dir / "spill", memory_limit=300,
                                  retry_min=0.2, retry_max=0.5)
    engine.start()
    yield engine
    engine.stop()


@pytest.fixture
def emulator(lab: LabFiles, engine: Engine) -> Iterator[subprocess.Popen[bytes]]:
    process = start_emulator(lab.root)  # every device of the lab, QoS 1 telemetry
    yield process
    stop_process(process)


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql.encode()).fetchall()


def test_postgres_stopped_mid_ingest_loses_no_reading_transition_or_alert(
        lab: LabFiles, cluster: Cluster, engine: Engine,
        emulator: subprocess.Popen[bytes]) -> None:
    ent = lab.runtime.enterprise
    listener = Listener(lab, [f"{ent}/_twin/+/state", f"{ent}/+/+/+/+/+/alert"])
    try:
        wait_for(lambda: all(t["state"] == "healthy" for t in engine.twin_states()),
                 timeout=15, what="every twin healthy")
        cluster.stop()
        wait_for(lambda: not engine.writer.db_up, what="the writer to notice the outage")
        # while the database is down: readings go on, twins change state, alerts come and go
        apply_fault(lab.root, SENSOR, "spike")
        apply_fault(lab.root, PLC, "dropout")
        wait_for(lambda: engine.twin(PLC)["state"] == "offline", what="the PLC offline")
        apply_fault(lab.root, PLC, "recover")
        wait_for(lambda: engine.twin(PLC)["state"] == "healthy" and
                 engine.twin(SENSOR)["state"] == "healthy", what="both back to healthy")
        wait_for(lambda: engine.writer.stats()["spilled_rows"] > 0, what="rows spilled to disk")
        assert not engine.writer.db_up
        cluster.start()
        # quiet every device and wait for the broker's acknowledgements: from then on, every
        # reading made since the start was acknowledged, was ingested and must be stored
        for device in lab.twins:
            apply_fault(lab.root, device, "dropout")
        settled = wait_for(lambda: (t := emulator_totals(lab.root)) and t["unacked"] == 0 and t,
                           what="every reading acknowledged")
        assert settled["dropped"] == 0
        published = settled["published_by_device"]

        def readings() -> dict[str, int]:
            return dict(rows(cluster.url, "SELECT device, count(DISTINCT ts) FROM telemetry"
                             " GROUP BY device"))

        with contextlib.suppress(AssertionError):
            wait_for(lambda: readings() == published, timeout=20)
        assert readings() == published
        assert engine.writer.flush(10)
    finally:
        listener.close()
    stats = engine.writer.stats()
    assert stats["db_up"]
    assert stats["write_errors"] >= 1
    assert (stats["spill_files"], stats["rejected_rows"]) == (0, 0)

    # every row the engine made: each valid message is one row per metric (a QoS 1 reading
    # the emulator had to send again is two)
    def telemetry_rows() -> tuple[dict[str, int], dict[str, int]]:
        made = {t.id: (t.messages - t.invalid) * len(t.cfg.metrics)
                for t in engine.twins.values()}
        return made, dict(rows(cluster.url, "SELECT device, count(*) FROM telemetry"
                               " GROUP BY device"))

    with contextlib.suppress(AssertionError):
        wait_for(lambda: (lambda made, stored: made == stored)(*telemetry_rows()))
    made, stored = telemetry_rows()
    assert stored == made

    # every transition and every alert the engine published, as it published them
    moves = [(doc["id"], doc["previous"], doc["state"], doc["since"])
             for topic, doc in listener.messages if topic.endswith("/state") and doc["previous"]]
    assert {m[:3] for m in moves} >= {
        (SENSOR, "healthy", "critical"), (SENSOR, "critical", "healthy"),
        (PLC, "healthy", "offline"), (PLC, "offline", "healthy")}
    alerts = {doc["id"]: doc for _, doc in listener.messages if "event" in doc}  # last event
    assert {(a["kind"], a["device"]) for a in alerts.values()} >= {
        ("threshold", SENSOR), ("offline", PLC)}
    expected_alerts = {i: (a["kind"], a["resolved_at"] is not None) for i, a in alerts.items()}

    def missing_moves() -> list[tuple[str, str, str, float]]:
        stored = rows(cluster.url, "SELECT device, from_state, to_state,"
                      " extract(epoch FROM ts)::float8 FROM transitions")
        return [m for m in moves  # timestamptz keeps microseconds
                if not any(m[:3] == r[:3] and abs(m[3] - r[3]) < 1e-5 for r in stored)]

    def stored_alerts() -> dict[str, tuple[str, bool]]:
        found = {i: (kind, resolved) for i, kind, resolved in rows(
            cluster.url, "SELECT id, kind, resolved_at IS NOT NULL FROM alerts")}
        return {i: found.get(i, ("missing", False)) for i in alerts}

    with contextlib.suppress(AssertionError):  # the last ones may still be on their way
        wait_for(lambda: not missing_moves() and stored_alerts() == expected_alerts)
    assert missing_moves() == []
    assert stored_alerts() == expected_alerts
