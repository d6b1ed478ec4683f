"""Databases for storage tests: a fresh one on the machine's PostgreSQL, or a throwaway cluster."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

PG_BIN = Path("/usr/lib/postgresql/15/bin")
MACHINE_PG = "postgresql://postgres@127.0.0.1:5432"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestDatabase:
    """A dtnlab_test_* database on the machine's PostgreSQL, dropped afterwards."""

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
    """A private PostgreSQL 15 cluster (initdb + pg_ctl as user postgres) on a free port."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dtn-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        shutil.chown(self.dir, "postgres", "postgres")
        self._run(PG_BIN / "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")

    def _run(self, *cmd: str | Path) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *map(str, cmd)], check=True,
                       capture_output=True, timeout=60)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-o", opts, "-l", self.dir / "log", "-w",
                  "start")

    def stop(self) -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
