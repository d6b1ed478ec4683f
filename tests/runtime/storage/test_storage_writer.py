"""The writer thread: batching, buffering and spilling through outages, replay after restarts."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from dtnlab.runtime.storage import Batch, PostgresStore, SqliteStore, StorageWriter
from dtnlab.runtime.storage.base import BatchRejected, StoreUnavailable
from tests.runtime.storage.pgcluster import Cluster


class FlakyStore(SqliteStore):
    """SQLite that can be switched off, as a database outage would."""

    down = False

    def connect(self) -> None:
        if self.down:
            raise StoreUnavailable("switched off")
        super().connect()

    def write(self, batch: Batch) -> None:
        if self.down:
            raise StoreUnavailable("switched off")
        super().write(batch)


def batches(n: int, size: int, start: int = 0) -> list[Batch]:
    out = []
    for b in range(n):
        seqs = range(start + b * size, start + (b + 1) * size)
        out.append(Batch([(1000.0 + s, "dev-1", {"seq": float(s)}) for s in seqs],
                         [(1000.0 + b, "dev-1", "a", "b", f"batch {b}")]))
    return out


def seqs(store: SqliteStore | PostgresStore) -> list[float]:
    return [r["value"] for r in store.history("dev-1", "seq", limit=10**6)]


def test_outage_buffers_then_spills_then_catches_up(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "db.sqlite3")
    store.down = True
    writer = StorageWriter(store, tmp_path / "spill", memory_limit=1000, retry_min=0.05,
                           retry_max=0.1, flush_interval=0.01)
    writer.start()
    for b in batches(50, 100):  # 100 telemetry + 1 transition a batch
        writer.put(b)
    deadline = time.monotonic() + 5
    while not writer.spill.files() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.spill.files(), "nothing spilled past the memory limit"
    assert writer.stats()["pending_rows"] <= 1000
    store.down = False
    assert writer.flush(10)
    assert seqs(store) == [float(s) for s in range(5000)]  # all there, in order
    assert len(store.transitions("dev-1", limit=100)) == 50
    assert writer.stats()["spill_files"] == 0
    writer.stop()
    store.close_readers()


def test_spill_survives_a_restart(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "db.sqlite3")
    store.down = True
    writer = StorageWriter(store, tmp_path / "spill", retry_min=0.05, retry_max=0.1)
    writer.start()
    for b in batches(5, 10):
        writer.put(b)
    writer.stop()  # still down: everything goes to disk
    assert len(writer.spill.files()) == 1
    store.down = False
    again = StorageWriter(store, tmp_path / "spill")
    again.start()
    assert again.flush(5)
    assert seqs(store) == [float(s) for s in range(50)]
    again.stop()
    store.close_readers()


@pytest.mark.postgres
def test_postgres_restarted_mid_ingest_loses_nothing(cluster: Cluster, tmp_path: Path) -> None:
    store = PostgresStore(cluster.url)
    writer = StorageWriter(store, tmp_path / "spill", memory_limit=3000, retry_min=0.2,
                           retry_max=0.5, flush_interval=0.02)
    writer.start()
    assert writer.db_up
    produced = [0]
    stop = threading.Event()

    def produce() -> None:  # 2,000 messages/s for as long as the test runs
        while not stop.is_set():
            writer.put(batches(1, 20, start=produced[0])[0])
            produced[0] += 20
            time.sleep(0.01)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        time.sleep(1.0)
        cluster.stop()
        time.sleep(2.0)  # ingest goes on; rows pile up in memory, then on disk
        assert not writer.db_up
        assert writer.stats()["spilled_rows"] > 0
        cluster.start()
        time.sleep(1.0)
    finally:
        stop.set()
        producer.join()
    assert writer.flush(20)
    values = seqs(store)
    assert len(values) >= produced[0]
    assert set(values) == {float(s) for s in range(produced[0])}
    assert writer.write_errors >= 1
    writer.stop()
    store.close_readers()


class PickyStore(SqliteStore):
    """SQLite that refuses any batch carrying the value 13."""

    def write(self, batch: Batch) -> None:
        if any(v.get("seq") == 13.0 for _, _, v in batch.telemetry):
            raise BatchRejected("13 is unlucky")
        super().write(batch)


def test_a_refused_batch_is_kept_aside_and_ingest_goes_on(tmp_path: Path) -> None:
    store = PickyStore(tmp_path / "db.sqlite3")
    writer = StorageWriter(store, tmp_path / "spill", flush_interval=0.01)
    writer.start()
    for b in batches(3, 10):  # the second batch holds 13
        writer.put(b)
        assert writer.flush(5)
    assert seqs(store) == [float(s) for s in range(30) if not 10 <= s < 20]
    (rejected,) = (tmp_path / "spill").glob("rejected-*.jsonl")
    assert [m[2]["seq"] for m in writer.spill.read(rejected).telemetry] == list(range(10, 20))
    assert writer.stats()["rejected_rows"] == 11
    writer.stop()
    store.close_readers()


@pytest.mark.postgres
def test_postgres_text_with_nul_is_stored(pg_store: PostgresStore) -> None:
    pg_store.write(Batch([(1000.0, "dev-1", {"mode": "a\x00b"})]))
    assert pg_store.latest("dev-1")[0]["text"] == "a\ufffdb"
