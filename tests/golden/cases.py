"""Golden cases: an inventory in, the expected files out (secret-dependent certs excluded)."""

from __future__ import annotations

from pathlib import Path

from dtnlab.generators.pipeline import render_lab
from dtnlab.generators.secrets import API_USER, RUNTIME_USER
from dtnlab.inventory.source import FileSource
from tests.conftest import DEMO_INVENTORY, seed_fixed_secrets

GOLDEN = Path(__file__).resolve().parent
# Certificates carry fresh random keys on every new lab, so they cannot be golden.
NOT_GOLDEN_PREFIXES = ("mosquitto/certs/",)


def case_inventory(case: str) -> Path:
    if case == "demo-plant":
        return DEMO_INVENTORY
    return next(p for p in sorted((GOLDEN / case).glob("inventory.*")))


def cases() -> list[str]:
    own = sorted(p.parent.name for p in GOLDEN.glob("*/inventory.*"))
    return ["demo-plant", *own]


def render_case(case: str, work: Path) -> dict[str, str]:
    """Render a case with fixed secrets; returns the golden files only."""
    lab = FileSource(case_inventory(case)).load()
    seed_fixed_secrets(work / "secrets", [d.id for d in lab.twins] + [RUNTIME_USER, API_USER],
                       lab.settings.api_users)
    files = render_lab(lab, work).files
    return {k: v for k, v in files.items() if not k.startswith(NOT_GOLDEN_PREFIXES)}
