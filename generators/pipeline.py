"""Render every selected generator for a lab, timing each stage."""

from __future__ import annotations

import gc
import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from dtnlab.inventory.model import Lab

from . import writer
from .forked import Forked, Gate, can_fork
from .platforms import PlatformMap
from .registry import CHECKING, Renderer, select
from .secret_files import Pending
from .secrets import LabSecrets, ensure_secrets
from .writer import WriteResult

SECRETS_DIR = "secrets"
# On a big lab these render in a forked worker on the second core (the Mosquitto password
# hashes and the twin configs: about half of the work), and on `generate` the worker writes
# their files too, while this process checks and renders the topology and writes the secrets.
WORKER = frozenset({"mosquitto", "twins"})
FORK_FROM = 1000  # devices; below this, forking costs more than it saves

Outputs = dict[str, tuple[dict[str, str], float]]


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


def _render_all(renderers: dict[str, Renderer], lab: Lab, secrets: LabSecrets) -> Outputs:
    return {name: _timed(renderer, lab, secrets) for name, renderer in renderers.items()}


def _worker_job(renderers: dict[str, Renderer], lab: Lab, secrets: LabSecrets,
                lab_dir: Path | None, gate: Gate | None) -> tuple[Outputs, WriteResult | None]:
    """Render `renderers`; with a `lab_dir`, write their files once the gate opens."""
    outputs = _render_all(renderers, lab, secrets)
    if lab_dir is None or gate is None or not gate.wait():
        return outputs, None
    return outputs, writer.write_part(lab_dir, _files(outputs))


def _files(outputs: Outputs) -> dict[str, str]:
    return {path: text for output, _ in outputs.values() for path, text in output.items()}


def _run(lab: Lab, lab_dir: Path, only: list[str] | None, platforms: PlatformMap | None,
         write: bool) -> tuple[Rendered, list[WriteResult]]:
    """Render (and with `write`, write part of) the lab: see render_lab and generate_lab."""
    timings: dict[str, float] = {}
    chosen = select(only, platforms)
    start = time.perf_counter()
    writes: Pending = []
    secrets: LabSecrets = ensure_secrets(lab, lab_dir / SECRETS_DIR, writes)
    timings["secrets"] = time.perf_counter() - start
    forked = {n: r for n, r in chosen.items() if n in WORKER and n not in CHECKING}
    if not (forked and len(lab.devices) >= FORK_FROM and can_fork()):
        forked = {}
    gate = Gate() if forked and write else None
    worker = Forked(partial(_worker_job, forked, lab, secrets, lab_dir if write else None, gate)
                    ) if forked else None
    try:
        outputs = _render_all({n: r for n, r in chosen.items() if n in CHECKING}, lab, secrets)
        if gate:
            gate.open()  # the topology accepted the lab
        start = time.perf_counter()
        for pending_write in writes:
            pending_write()
        timings["secrets"] += time.perf_counter() - start
        done = [writer.write_part(lab_dir, _files(outputs))] if write else []
        outputs.update(_render_all({n: r for n, r in chosen.items()
                                    if n not in outputs and n not in forked}, lab, secrets))
        if worker:
            worker_outputs, worker_done = worker.result()
            outputs.update(worker_outputs)
            done += [worker_done] if worker_done else []
    except BaseException:  # a refused lab (or Ctrl-C): the worker writes nothing more and goes
        if gate:
            gate.open(go=False)
        if worker:
            worker.discard()
        raise
    files: dict[str, str] = {}
    by_generator: dict[str, list[str]] = {}
    for name in chosen:  # the registry's order, whatever finished first
        output, timings[name] = outputs[name]
        by_generator[name] = sorted(output)
        files.update(output)
    return Rendered(files, by_generator, lab_digest(lab), timings), done


def render_lab(lab: Lab, lab_dir: Path, only: list[str] | None = None,
               platforms: PlatformMap | None = None) -> Rendered:
    """Render the chosen generators; the lab's secrets are created or loaded on the way.

    Secrets are worked out in memory first and written only after the checking generators (the
    topology) have accepted the lab: a refused lab leaves nothing behind. On a big lab the
    WORKER generators render meanwhile in a forked worker.

    Args:
        lab: the lab model.
        lab_dir: the lab folder; its secrets/ is read and completed.
        only: generator names (None: all).
        platforms: the platform map of the topology (None: the shipped one).

    Raises:
        TopologyError: every problem that keeps the lab from being a containerlab topology.
    """
    return _run(lab, lab_dir, only, platforms, write=False)[0]


def generate_lab(lab: Lab, lab_dir: Path,
                 platforms: PlatformMap | None = None) -> tuple[Rendered, WriteResult]:
    """Render every generator and write the lab folder, as render_lab and writer.write would.

    On a big lab the forked worker writes its generators' files itself, alongside this process
    writing the secrets, once the topology has accepted the lab.

    Raises:
        TopologyError: every problem that keeps the lab from being a containerlab topology.
    """
    rendered, done = _run(lab, lab_dir, None, platforms, write=True)
    return rendered, writer.write(lab_dir, rendered.files, rendered.inventory_digest, done)
