"""Schema of both databases as numbered migrations, recorded in a schema_version table."""

from __future__ import annotations

SQLITE_MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        "CREATE TABLE telemetry (ts REAL NOT NULL, device TEXT NOT NULL, metric TEXT NOT NULL,"
        " value REAL, text_value TEXT)",
        "CREATE INDEX telemetry_series ON telemetry (device, metric, ts)",
        "CREATE TABLE latest (device TEXT NOT NULL, metric TEXT NOT NULL, ts REAL NOT NULL,"
        " value REAL, text_value TEXT, PRIMARY KEY (device, metric)) WITHOUT ROWID",
        "CREATE TABLE transitions (ts REAL NOT NULL, device TEXT NOT NULL,"
        " from_state TEXT NOT NULL, to_state TEXT NOT NULL, reason TEXT NOT NULL)",
        "CREATE INDEX transitions_device_ts ON transitions (device, ts)",
        "CREATE TABLE alerts (id TEXT PRIMARY KEY, device TEXT NOT NULL, metric TEXT NOT NULL,"
        " kind TEXT NOT NULL, severity TEXT NOT NULL, message TEXT NOT NULL,"
        " raised_at REAL NOT NULL, resolved_at REAL, acked_at REAL, acked_by TEXT)",
        "CREATE INDEX alerts_open ON alerts (resolved_at, raised_at)",
    ]),
]

# PostgreSQL: telemetry is a TimescaleDB hypertable when the extension can be created, else a
# table partitioned by day (partitions are added by the store as data arrives).
PG_COMMON = [
    "CREATE TABLE latest (device text NOT NULL, metric text NOT NULL, ts timestamptz NOT NULL,"
    " value double precision, text_value text, PRIMARY KEY (device, metric))",
    "CREATE TABLE transitions (ts timestamptz NOT NULL, device text NOT NULL,"
    " from_state text NOT NULL, to_state text NOT NULL, reason text NOT NULL)",
    "CREATE INDEX transitions_device_ts ON transitions (device, ts)",
    "CREATE TABLE alerts (id text PRIMARY KEY, device text NOT NULL, metric text NOT NULL,"
    " kind text NOT NULL, severity text NOT NULL, message text NOT NULL,"
    " raised_at timestamptz NOT NULL, resolved_at timestamptz, acked_at timestamptz,"
    " acked_by text)",
    "CREATE INDEX alerts_open ON alerts (resolved_at, raised_at)",
]
PG_TELEMETRY_COLUMNS = ("(ts timestamptz NOT NULL, device text NOT NULL, metric text NOT NULL,"
                        " value double precision, text_value text)")
PG_PARTITIONED = [
    f"CREATE TABLE telemetry {PG_TELEMETRY_COLUMNS} PARTITION BY RANGE (ts)",
    "CREATE TABLE telemetry_default PARTITION OF telemetry DEFAULT",
    "CREATE INDEX telemetry_series ON telemetry (device, metric, ts)",
]
PG_HYPERTABLE = [
    f"CREATE TABLE telemetry {PG_TELEMETRY_COLUMNS}",
    "SELECT create_hypertable('telemetry', 'ts', chunk_time_interval => interval '1 day')",
    "CREATE INDEX telemetry_series ON telemetry (device, metric, ts)",
]
SCHEMA_VERSION_TABLE = ("CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY,"
                        " applied_at double precision NOT NULL, note text NOT NULL DEFAULT '')")


def pg_migrations(timescale: bool) -> list[tuple[int, list[str]]]:
    return [(1, (PG_HYPERTABLE if timescale else PG_PARTITIONED) + PG_COMMON)]
