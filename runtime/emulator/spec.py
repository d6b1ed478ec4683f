"""Which twins an emulator process runs, read from the lab folder (labfiles), and how it connects."""

from __future__ import annotations

import ssl
import zlib
from pathlib import Path

from ..labfiles import RUNTIME_FILE, TWINS_DIR, LabFileError, RuntimeConfig, TwinConfig, load_twin


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


def read_runtime(lab_dir: Path) -> RuntimeConfig:
    path = lab_dir / RUNTIME_FILE
    try:
        return RuntimeConfig.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise LabFileError(f"{path}: missing (generate the lab first)") from None
    except ValueError as exc:
        raise LabFileError(f"{path}: {exc}") from None


def select_twins(lab_dir: Path, runtime: RuntimeConfig, ids: list[str] | None = None,
                 shard: tuple[int, int] | None = None) -> list[TwinConfig]:
    """Load only this process's twins: a shard of 10,000 should not parse the other 7,500."""
    known = list(runtime.twins)
    if ids:
        unknown = sorted(set(ids) - set(known))
        if unknown:
            raise LabFileError(f"unknown device {', '.join(unknown)}; the lab has "
                               f"{len(known)} twins ({', '.join(known[:10])}, ...)")
        wanted = set(ids)
        known = [i for i in known if i in wanted]
    return [load_twin(lab_dir / TWINS_DIR / f"{i}.json") for i in known if in_shard(i, shard)]


def keepalive_s(twin: TwinConfig) -> int:
    """Long enough that telemetry alone keeps the session, and at least the heartbeat."""
    return max(10, int(twin.heartbeat_s + 0.999), int(2 * twin.period_s + 0.999))


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.check_hostname = False  # the lab certificate names the broker node, not 127.0.0.1
    return context
