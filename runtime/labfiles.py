"""Typed loaders of a generated lab folder: runtime.json, twins/<id>.json and device secrets."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

RUNTIME_FILE = "runtime.json"
TWINS_DIR = "twins"
PASSWORDS_DIR = "secrets/devices"
RUN_DIR = "run"
# A node that does not share the broker's host (a container) is told the broker's name here;
# runtime.json's broker.host (127.0.0.1) is right for processes on the broker's own machine.
BROKER_HOST_ENV = "DTN_BROKER_HOST"


class LabFileError(Exception):
    """A lab file is missing or malformed; the message names the file and the field."""


class _Model(BaseModel):
    # Unknown keys are ignored so a newer generator never breaks an older runtime.
    model_config = ConfigDict(frozen=True, extra="ignore")


class MetricSpec(_Model):
    type: Literal["float", "int", "bool", "str"] = "float"
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    normal: tuple[float, float] | None = None
    warning: tuple[float, float] | None = None

    @property
    def numeric(self) -> bool:
        return self.type in ("float", "int")


class Topics(_Model):
    telemetry: str
    command: str
    status: str
    alert: str


class Hierarchy(_Model):
    site: str
    area: str
    line: str
    cell: str


class TwinConfig(_Model):
    """One twinned device, as twins/<id>.json describes it."""

    id: str
    name: str = ""
    uns_path: str
    hierarchy: Hierarchy
    topics: Topics
    twin_state_topic: str
    mqtt_user: str
    protocol: Literal["mqtt", "opcua"] = "mqtt"
    period_s: float = Field(gt=0)
    heartbeat_s: float = Field(gt=0)
    stuck_after: int = Field(default=20, ge=0)  # same float this many times in a row: stuck
    metrics: dict[str, MetricSpec]
    telemetry_schema: dict[str, Any] = Field(alias="schema")
    mobile: bool = False
    cells: tuple[str, ...] = ()

    @property
    def level_paths(self) -> tuple[str, str, str]:
        """The (site, area, line) hierarchy paths this twin aggregates into."""
        parts = self.uns_path.split("/")
        return "/".join(parts[:2]), "/".join(parts[:3]), "/".join(parts[:4])


class BrokerConfig(_Model):
    host: str = "127.0.0.1"
    port: int
    tls_port: int | None = None
    ca_file: str | None = None


class Level(_Model):
    level: str
    path: str
    name: str = ""


class RuntimeConfig(_Model):
    """runtime.json: what the runtime needs to know about the whole lab."""

    lab: str
    enterprise: str
    broker: BrokerConfig
    runtime_user: str = "dtn-runtime"
    telemetry_qos: Literal[0, 1] = 0  # what the device emulators publish telemetry at
    api_user: str = "dtn-api"
    levels: tuple[Level, ...] = ()
    aggregates: dict[str, str] = Field(default_factory=dict)
    twins: tuple[str, ...] = ()
    topology: dict[str, Any] = Field(default_factory=dict)


def for_this_node(runtime: RuntimeConfig,
                  environ: Mapping[str, str] | None = None) -> RuntimeConfig:
    """runtime.json as this node sees it: the broker's host from $DTN_BROKER_HOST when set.

    Args:
        runtime: runtime.json as generated.
        environ: the node's environment (default: this process's).
    """
    host = (os.environ if environ is None else environ).get(BROKER_HOST_ENV, "").strip()
    if not host or host == runtime.broker.host:
        return runtime
    return runtime.model_copy(update={"broker": runtime.broker.model_copy(update={"host": host})})


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise LabFileError(f"{path}: missing (generate the lab first)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabFileError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise LabFileError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object file that may be missing or half-written (status and state files).

    Returns:
        The object, or None when the file is unreadable, not JSON or not an object.
    """
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _parse(model: type[_Model], path: Path) -> Any:
    try:
        return model.model_validate(_read_json(path))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise LabFileError(f"{path}: {problems}") from None


class LabFiles:
    """A lab folder loaded: its runtime config, every twin, and access to its secrets."""

    def __init__(self, root: Path, runtime: RuntimeConfig, twins: dict[str, TwinConfig]) -> None:
        self.root = root
        self.runtime = runtime
        self.twins = twins

    @property
    def run_dir(self) -> Path:
        return self.root / RUN_DIR

    @property
    def ca_file(self) -> Path | None:
        ca = self.runtime.broker.ca_file
        return self.root / ca if ca else None

    def password(self, user: str) -> str:
        """The MQTT password of `user`, from secrets/devices/<user>.password."""
        path = self.root / PASSWORDS_DIR / f"{user}.password"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            raise LabFileError(f"{path}: missing password of MQTT user {user!r}") from None


def load_twin(path: Path) -> TwinConfig:
    twin: TwinConfig = _parse(TwinConfig, path)
    if twin.id != path.stem:
        raise LabFileError(f"{path}: id {twin.id!r} does not match the file name")
    return twin


def load_lab(root: Path | str, environ: Mapping[str, str] | None = None) -> LabFiles:
    """Load runtime.json and every twin it lists; every bad file is reported at once.

    Args:
        root: the lab folder.
        environ: the node's environment, for its broker host (default: this process's).

    Raises:
        LabFileError: naming each missing or malformed file and field.
    """
    root = Path(root)
    runtime = for_this_node(_parse(RuntimeConfig, root / RUNTIME_FILE), environ)
    twins: dict[str, TwinConfig] = {}
    errors: list[str] = []
    for twin_id in runtime.twins:
        try:
            twins[twin_id] = load_twin(root / TWINS_DIR / f"{twin_id}.json")
        except LabFileError as exc:
            errors.append(str(exc))
    if errors:
        raise LabFileError("\n".join(errors))
    return LabFiles(root, runtime, twins)
