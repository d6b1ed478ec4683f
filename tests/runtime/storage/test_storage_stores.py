"""Both stores: schema and migrations, writes, and the queries the API uses."""

from __future__ import annotations

import time

import pytest

from dtnlab.runtime.storage import Batch, PostgresStore, Store

T0 = 1_764_000_000.0  # a fixed day, so buckets are predictable


def alert(alert_id: str, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": alert_id, "device": "dev-1", "metric": "temperature", "kind": "threshold",
        "severity": "warning", "message": "too hot", "raised_at": T0 + 5, "resolved_at": None,
        "acked_at": None, "acked_by": None}
    row.update(changes)
    return row


def sample_batch() -> Batch:
    telemetry = [(T0 + i, "dev-1", {"temperature": 20.0 + i, "running": i % 2 == 0,
                                    "mode": f"m{i}", "count": i}) for i in range(10)]
    telemetry.append((T0 + 3.5, "dev-2", {"temperature": 99.5}))
    transitions = [(T0 + 1, "dev-1", "offline", "initializing", "birth message"),
                   (T0 + 2, "dev-1", "initializing", "healthy", "first data")]
    return Batch(telemetry, transitions, [alert("a-1")])


def test_schema_is_versioned_and_migrations_rerun_cleanly(store: Store) -> None:
    store.write(sample_batch())
    store.close()
    store.connect()  # a second start: nothing to migrate, nothing lost
    assert store.count_telemetry() == 10 * 4 + 1
    rows = store._all("SELECT version, note FROM schema_version")  # type: ignore[attr-defined]
    assert [r["version"] for r in rows] == [1]


def test_latest_and_history(store: Store) -> None:
    store.write(sample_batch())
    store.write(Batch([(T0 - 100, "dev-1", {"temperature": -1.0})]))  # late, old: not latest
    latest = {(r["device"], r["metric"]): r for r in store.latest()}
    assert latest[("dev-1", "temperature")]["value"] == 29.0
    assert latest[("dev-1", "temperature")]["ts"] == pytest.approx(T0 + 9)
    assert latest[("dev-1", "running")]["value"] == 0.0
    assert latest[("dev-1", "mode")]["text"] == "m9"
    assert latest[("dev-1", "count")]["value"] == 9.0
    assert [r["metric"] for r in store.latest("dev-2")] == ["temperature"]

    raw = store.history("dev-1", "temperature", T0 + 2, T0 + 5)
    assert [(r["ts"] - T0, r["value"]) for r in raw] == [(2, 22), (3, 23), (4, 24)]
    assert len(store.history("dev-1", "temperature")) == 11
    texts = store.history("dev-1", "mode", T0, T0 + 2)
    assert [r["text"] for r in texts] == ["m0", "m1"]
    buckets = store.history("dev-1", "temperature", T0, T0 + 10, bucket_s=5)
    assert [(b["ts"] - T0, b["value"], b["min"], b["max"], b["count"]) for b in buckets] == [
        (0, 22.0, 20.0, 24.0, 5), (5, 27.0, 25.0, 29.0, 5)]


def test_transitions_newest_first(store: Store) -> None:
    store.write(sample_batch())
    rows = store.transitions("dev-1")
    assert [r["to_state"] for r in rows] == ["healthy", "initializing"]
    assert rows[0]["reason"] == "first data"
    assert store.transitions("dev-1", start=T0 + 1.5) == rows[:1]
    assert store.transitions("dev-9") == []


def test_alerts_upsert_resolve_and_ack(store: Store) -> None:
    store.write(sample_batch())
    assert [a["id"] for a in store.alerts("open")] == ["a-1"]
    assert store.ack_alert("a-1", "alice", T0 + 6)
    assert not store.ack_alert("nope", "alice", T0)
    # The engine escalates, then resolves, with its own (unacked) copy: the ack survives.
    store.write(Batch(alerts=[alert("a-1", severity="critical")]))
    store.write(Batch(alerts=[alert("a-1", severity="critical", resolved_at=T0 + 9)]))
    assert store.alerts("open") == []
    (row,) = store.alerts("resolved", device="dev-1")
    assert row["severity"] == "critical"
    assert row["resolved_at"] == pytest.approx(T0 + 9)
    assert row["acked_by"] == "alice"
    assert row["acked_at"] == pytest.approx(T0 + 6)
    with pytest.raises(ValueError, match="status must be"):
        store.alerts("closed")


def timescaledb_in(store: PostgresStore, catalog: str, column: str) -> bool:
    rows = store._all(f"SELECT count(*) AS n FROM {catalog} WHERE {column} = 'timescaledb'")
    return bool(rows[0]["n"])


@pytest.mark.postgres
def test_postgres_telemetry_is_a_hypertable_or_partitioned_by_day(
        pg_store: PostgresStore) -> None:
    store = pg_store
    now = time.time()
    store.write(Batch([(now - 3 * 86400, "dev-1", {"t": 1.0}), (now, "dev-1", {"t": 2.0}),
                       (1.0, "dev-1", {"t": 3.0}), (now + 2 * 86400, "dev-1", {"t": 4.0})]))
    # the schema follows what the server offers: a hypertable when TimescaleDB could be
    # enabled (it is installed, and preloaded), daily partitions when not
    assert store.timescale is timescaledb_in(store, "pg_extension", "extname")
    assert timescaledb_in(store, "pg_available_extensions", "name") or not store.timescale
    if store.timescale:
        rows = store._all("SELECT hypertable_name FROM timescaledb_information.hypertables")
        assert "telemetry" in {r["hypertable_name"] for r in rows}
        assert store.count_telemetry() == 4
        return
    parts = {r["tableoid"]: r["n"] for r in store._all(
        "SELECT tableoid::regclass::text AS tableoid, count(*) AS n FROM telemetry GROUP BY 1")}
    # a batch spanning 55 years goes to the default partition rather than 20,000 new ones;
    # today's and tomorrow's partitions are made when the store connects
    today = time.strftime("%Y%m%d", time.gmtime(now))
    assert parts == {"telemetry_default": 3, f"telemetry_p{today}": 1}
    store.write(Batch([(now - 86400, "dev-1", {"t": 5.0}), (now, "dev-1", {"t": 6.0})]))
    day = time.strftime("%Y%m%d", time.gmtime(now - 86400))
    parts = {r["t"] for r in store._all("SELECT tableoid::regclass::text AS t FROM telemetry")}
    assert f"telemetry_p{day}" in parts
