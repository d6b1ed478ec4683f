"""A running demo lab for API tests: real broker, engine, storage and device emulators."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from dtnlab.runtime.api import Settings
from dtnlab.runtime.emulator.control import request_fault
from dtnlab.runtime.engine import Engine, EngineConfig
from dtnlab.runtime.labfiles import LabFiles, load_lab
from dtnlab.runtime.storage import DATABASE_URL_ENV, open_store
from tests.broker import Broker, free_port
from tests.conftest import DEMO_INVENTORY
from tests.labs import generate_from, tune_twin
from tests.waiting import stop_process, wait_for

SENSOR = "aar-l1-c1-tt-01"  # temperature: normal [15, 30], warning [10, 35]
TEST_PERIOD_S = 1.0
# Twins the API tests fault or switch; each test owns its own so they do not interfere.
SPIKED = "aar-l1-c1-tt-01"
WS_SPIKED = "aar-l2-c1-tt-01"
SILENCED = "brn-l2-c2-pt-01"
SERVICED = "aar-l1-c2-tt-01"
ROLES = ("viewer", "operator", "admin")
FAST_PERIOD_S = 0.25  # twins that tests fault: their alerts confirm within a second


def generate_lab(folder: Path, period_s: float | None = TEST_PERIOD_S,
                 inventory: Path = DEMO_INVENTORY) -> Path:
    """The demo plant (or `inventory`) from the real generators, on free ports, every twin at
    `period_s`."""
    generate_from(inventory, folder, api_port=free_port())
    if period_s is not None:
        for path in (folder / "twins").glob("*.json"):
            doc = json.loads(path.read_text())
            doc["period_s"] = min(float(doc["period_s"]), period_s)
            path.write_text(json.dumps(doc))
    return folder


def engine_config() -> EngineConfig:
    return EngineConfig(client_id=f"dtn-engine-test-{uuid.uuid4().hex[:8]}", tick_s=0.05,
                        aggregate_period_s=1.0, status_period_s=0.2)


class LabRig:
    """Generate, then run: broker, twin engine (in this process), emulators (a subprocess).

    Args:
        root: an empty folder; the lab goes in root/lab.
        database_url: PostgreSQL for the engine and the API, else SQLite in the lab.
        emulate: start the device emulators.
        inventory: the lab's inventory (default: the demo plant).
    """

    def __init__(self, root: Path, *, database_url: str | None = None,
                 emulate: bool = True, sensor_period_s: float | None = None,
                 fast_twins: tuple[str, ...] = (), inventory: Path = DEMO_INVENTORY) -> None:
        self.lab_dir = generate_lab(root / "lab", inventory=inventory)
        for twin in {*fast_twins, *((SENSOR,) if sensor_period_s else ())}:
            tune_twin(self.lab_dir, twin, period_s=sensor_period_s or FAST_PERIOD_S)
        self.database_url = database_url
        self.emulate = emulate
        self.broker = Broker(self.lab_dir)
        self.lab: LabFiles = load_lab(self.lab_dir)
        self.engine: Engine | None = None
        self.emulators: subprocess.Popen[bytes] | None = None
        self.api: subprocess.Popen[bytes] | None = None
        self.base_url = ""

    def __enter__(self) -> LabRig:
        try:
            self.broker.start()
            self.engine = Engine(self.lab, engine_config(),
                                 store=open_store(self.lab.run_dir, self.database_url or ""))
            self.engine.start()
            wait_for(self.engine.client.connected.is_set, what="the engine to connect")
            if self.emulate:
                self.emulators = self._spawn("emulator", [])
                engine = self.engine
                wait_for(lambda: engine.twin(SENSOR)["state"] == "healthy", timeout=20,
                         what=f"{SENSOR} to be healthy")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _spawn(self, node: str, extra: list[str],
               env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        logs = self.lab_dir / "run" / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        # the rig's own database choice, not whatever the test run's environment names
        inherited = {k: v for k, v in os.environ.items() if k != DATABASE_URL_ENV}
        if self.database_url:
            inherited[DATABASE_URL_ENV] = self.database_url
        with (logs / f"{node}.log").open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "dtnlab.runtime", node, "--lab", str(self.lab_dir),
                 *extra], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env={**inherited, **(env or {})})

    def settings(self, **overrides: Any) -> Settings:
        """API settings for tests: generous rate limits unless a test says otherwise."""
        values: dict[str, Any] = {"rate_per_s": 10_000, "rate_burst": 10_000,
                                  "token_rate_per_s": 10_000, "token_rate_burst": 10_000,
                                  "login_rate_per_s": 1000, "login_burst": 1000,
                                  "database_url": self.database_url}
        values.update(overrides)
        return Settings(**values)

    def start_api(self, port: int, env: dict[str, str] | None = None) -> str:
        """Run the API node as `dtnlab up` does (a subprocess); return its base URL."""
        base = {"DTN_RATE_PER_S": "10000", "DTN_RATE_BURST": "10000",
                "DTN_TOKEN_RATE_PER_S": "10000", "DTN_TOKEN_RATE_BURST": "10000"}
        self.api = self._spawn("api", ["--port", str(port)], {**base, **(env or {})})
        import httpx

        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert self.api is not None
            assert self.api.poll() is None, self.log("api")
            try:
                return httpx.get(f"{url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=20, what="the API node", interval=0.1)
        return url

    def fault(self, device: str, kind: str, **args: Any) -> dict[str, Any]:
        """Inject a fault through the emulators' fault channel (run/faults/)."""
        return request_fault(self.lab_dir, device, kind, args)

    def log(self, node: str) -> str:
        path = self.lab_dir / "run" / "logs" / f"{node}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def passwords(self) -> dict[str, str]:
        doc: dict[str, str] = json.loads((self.lab_dir / "secrets/api-users.json").read_text())
        return doc

    def close(self) -> None:
        for proc in (self.api, self.emulators):
            if proc is not None:
                stop_process(proc)
        self.api = self.emulators = None
        if self.engine is not None:
            self.engine.stop()
            self.engine = None
        self.broker.stop()


def assert_error(body: dict[str, object], status: int, code: str | None = None) -> None:
    """Every error has the one JSON shape."""
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict)
    assert set(error) == {"status", "code", "message", "details"}, error
    assert error["status"] == status
    assert isinstance(error["message"], str)
    assert error["message"]
    if code is not None:
        assert error["code"] == code
