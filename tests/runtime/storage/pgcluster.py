"""Databases for storage tests: a fresh one on the machine's PostgreSQL, or a throwaway cluster."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

from tests.broker import free_port

MACHINE_PG = "postgresql://postgres@127.0.0.1:5432"
DEBIAN_PG = Path("/usr/lib/postgresql")


@functools.cache
def pg_bin() -> Path:
    """The folder with the server's initdb and pg_ctl: pg_config's, else the newest Debian one.

    pg_config comes from libpq-dev, whose version may differ from the installed server's.
    """
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                               check=False).stdout.strip()
        if found:
            candidates.append(Path(found))
    versions = [p for p in DEBIAN_PG.glob("*/bin") if p.parent.name.isdigit()]
    candidates += sorted(versions, key=lambda p: int(p.parent.name), reverse=True)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise RuntimeError(f"no PostgreSQL server binaries (initdb, pg_ctl) in {candidates}: "
                       "install the postgresql package")


class TestDatabase:
    """A dtnlab_test_* database on the machine's PostgreSQL, dropped afterwards."""

    __test__ = False  # a fixture helper, not a test class

    def __init__(self) -> None:
        self.name = f"dtnlab_test_{uuid.uuid4().hex[:10]}"
        self.url = f"{MACHINE_PG}/{self.name}"

    def __enter__(self) -> TestDatabase:
        with psycopg.connect(f"{MACHINE_PG}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.name}".encode())
        return self

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(f"{MACHINE_PG}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)".encode())


class Cluster:
    """A private PostgreSQL cluster (initdb + pg_ctl as user postgres) on a free port."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dtn-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        shutil.chown(self.dir, "postgres", "postgres")
        self._run(pg_bin() / "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")

    def _run(self, *cmd: str | Path) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *map(str, cmd)], check=True,
                       capture_output=True, timeout=60)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(pg_bin() / "pg_ctl", "-D", self.data, "-o", opts, "-l", self.dir / "log", "-w",
                  "start")

    def stop(self) -> None:
        self._run(pg_bin() / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
