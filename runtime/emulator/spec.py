"""Which twins an emulator process runs (read with labfiles) and how it reaches the broker."""

from __future__ import annotations

import json
import ssl
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..labfiles import (
    PASSWORDS_DIR,
    RUNTIME_FILE,
    TWINS_DIR,
    LabFileError,
    MetricSpec,
    RuntimeConfig,
    TwinConfig,
    for_this_node,
    load_twin,
)


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """What a device emulator keeps of its twin config: ~0.5 KB instead of ~9 KB a device."""

    id: str
    uns_path: str
    mqtt_user: str
    telemetry: str
    command: str
    status: str
    period_s: float
    heartbeat_s: float
    metrics: dict[str, MetricSpec]  # one dict shared by every device of the same profile
    mobile: bool = False
    cells: tuple[str, ...] = ()

    @property
    def keepalive(self) -> int:
        """Long enough that telemetry alone keeps the session, and at least the heartbeat."""
        return max(10, int(self.heartbeat_s + 0.999), int(2 * self.period_s + 0.999))


def device_profile(twin: TwinConfig, shared: dict[str, dict[str, MetricSpec]]) -> DeviceProfile:
    """A slim profile; `shared` interns metric dicts across twins (thousands share a handful)."""
    key = json.dumps({n: m.model_dump() for n, m in twin.metrics.items()}, sort_keys=True)
    topics = twin.topics
    return DeviceProfile(
        id=twin.id, uns_path=twin.uns_path, mqtt_user=twin.mqtt_user,
        telemetry=topics.telemetry, command=topics.command, status=topics.status,
        period_s=twin.period_s, heartbeat_s=twin.heartbeat_s,
        metrics=shared.setdefault(key, dict(twin.metrics)), mobile=twin.mobile,
        cells=tuple(twin.cells))


def in_shard(device_id: str, shard: tuple[int, int] | None) -> bool:
    """Stable across regenerations: adding a device never moves the others to another shard."""
    return shard is None or zlib.crc32(device_id.encode()) % shard[1] == shard[0]


def parse_shard(text: str) -> tuple[int, int]:
    """"K/N" with 0 <= K < N."""
    k, _, n = text.partition("/")
    try:
        shard = (int(k), int(n))
    except ValueError:
        shard = (-1, 0)
    if not 0 <= shard[0] < shard[1]:
        raise ValueError(f"shard {text!r}: expected K/N with 0 <= K < N")
    return shard


def read_runtime(lab_dir: Path, environ: Mapping[str, str] | None = None) -> RuntimeConfig:
    """runtime.json as this node sees it (see labfiles.for_this_node)."""
    path = lab_dir / RUNTIME_FILE
    try:
        return for_this_node(RuntimeConfig.model_validate_json(path.read_bytes()), environ)
    except FileNotFoundError:
        raise LabFileError(f"{path}: missing (generate the lab first)") from None
    except ValueError as exc:
        raise LabFileError(f"{path}: {exc}") from None


def select_devices(lab_dir: Path, runtime: RuntimeConfig, ids: list[str] | None = None,
                   shard: tuple[int, int] | None = None) -> list[DeviceProfile]:
    """Load only this process's twins: a shard of 10,000 should not parse the other 7,500."""
    known = list(runtime.twins)
    if ids:
        unknown = sorted(set(ids) - set(known))
        if unknown:
            raise LabFileError(f"unknown device {', '.join(unknown)}; the lab has "
                               f"{len(known)} twins ({', '.join(known[:10])}, ...)")
        wanted = set(ids)
        known = [i for i in known if i in wanted]
    shared: dict[str, dict[str, MetricSpec]] = {}
    return [device_profile(load_twin(lab_dir / TWINS_DIR / f"{i}.json"), shared)
            for i in known if in_shard(i, shard)]


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verify the broker against the lab CA (its certificate names 127.0.0.1 and localhost)."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def read_password(lab_dir: Path, user: str) -> str:
    """The MQTT password of `user` (a node reads only its own devices' files)."""
    path = lab_dir / PASSWORDS_DIR / f"{user}.password"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise LabFileError(f"{path}: missing password of MQTT user {user!r}") from None
