"""Render every selected generator for a lab, timing each stage."""

from __future__ import annotations

import gc
import hashlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dtnlab.inventory.model import Lab

from .platforms import PlatformMap
from .registry import CHECKING, Renderer, select
from .secret_files import Pending
from .secrets import LabSecrets, ensure_secrets

SECRETS_DIR = "secrets"
# Generators whose time goes to work that releases the GIL (Mosquitto's PBKDF2 password
# hashes): they start first on a thread of their own while the others render meanwhile.
OFF_GIL = frozenset({"mosquitto"})


@dataclass
class Rendered:
    files: dict[str, str]
    by_generator: dict[str, list[str]]
    inventory_digest: str
    timings: dict[str, float] = field(default_factory=dict)


def lab_digest(lab: Lab) -> str:
    """Digest of the model, not the source file, so NetBox and YAML give the same manifest."""
    return hashlib.sha256(lab.model_dump_json().encode()).hexdigest()


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for one load-render-write pass.

    The pass builds a large object graph without cycles to reclaim; the collector's full
    passes over it cost a third of the time at 10,000 devices. Reference counting still frees
    everything, and the collector is back on afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _timed(renderer: Renderer, lab: Lab, secrets: LabSecrets) -> tuple[dict[str, str], float]:
    start = time.perf_counter()
    output = renderer(lab, secrets)
    return output, time.perf_counter() - start


def render_lab(lab: Lab, lab_dir: Path, only: list[str] | None = None,
               platforms: PlatformMap | None = None) -> Rendered:
    """Render the chosen generators; the lab's secrets are created or loaded on the way.

    Secrets are worked out in memory first and written only after the checking generators (the
    topology) have accepted the lab: a refused lab leaves nothing behind. The Mosquitto
    password hashes, meanwhile, are already being computed.

    Args:
        lab: the lab model.
        lab_dir: the lab folder; its secrets/ is read and completed.
        only: generator names (None: all).
        platforms: the platform map of the topology (None: the shipped one).

    Raises:
        TopologyError: every problem that keeps the lab from being a containerlab topology.
    """
    timings: dict[str, float] = {}
    chosen = select(only, platforms)
    start = time.perf_counter()
    writes: Pending = []
    secrets: LabSecrets = ensure_secrets(lab, lab_dir / SECRETS_DIR, writes)
    timings["secrets"] = time.perf_counter() - start
    outputs: dict[str, tuple[dict[str, str], float]] = {}
    with ThreadPoolExecutor(max_workers=1) as pool:
        background = {name: pool.submit(_timed, renderer, lab, secrets)
                      for name, renderer in chosen.items() if name in OFF_GIL}
        for name in CHECKING & chosen.keys():
            outputs[name] = _timed(chosen[name], lab, secrets)  # raises on a refused lab
        start = time.perf_counter()
        for write in writes:
            write()
        timings["secrets"] += time.perf_counter() - start
        for name, renderer in chosen.items():
            if name not in background and name not in outputs:
                outputs[name] = _timed(renderer, lab, secrets)
        outputs.update({name: future.result() for name, future in background.items()})
    files: dict[str, str] = {}
    by_generator: dict[str, list[str]] = {}
    for name in chosen:  # the registry's order, whatever finished first
        output, timings[name] = outputs[name]
        by_generator[name] = sorted(output)
        files.update(output)
    return Rendered(files, by_generator, lab_digest(lab), timings)
