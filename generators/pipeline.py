"""Render every selected generator for a lab, timing each stage."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from dtnlab.inventory.model import Lab

from .registry import select
from .secrets import LabSecrets, ensure_secrets

SECRETS_DIR = "secrets"


@dataclass
class Rendered:
    files: dict[str, str]
    by_generator: dict[str, list[str]]
    inventory_digest: str
    timings: dict[str, float] = field(default_factory=dict)


def lab_digest(lab: Lab) -> str:
    """Digest of the model, not the source file, so NetBox and YAML give the same manifest."""
    return hashlib.sha256(lab.model_dump_json().encode()).hexdigest()


def render_lab(lab: Lab, lab_dir: Path, only: list[str] | None = None) -> Rendered:
    """Create or load the lab's secrets, then render the chosen generators."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    secrets: LabSecrets = ensure_secrets(lab, lab_dir / SECRETS_DIR)
    timings["secrets"] = time.perf_counter() - start
    files: dict[str, str] = {}
    by_generator: dict[str, list[str]] = {}
    for name, renderer in select(only).items():
        start = time.perf_counter()
        output = renderer(lab, secrets)
        timings[name] = time.perf_counter() - start
        by_generator[name] = sorted(output)
        files.update(output)
    return Rendered(files, by_generator, lab_digest(lab), timings)
