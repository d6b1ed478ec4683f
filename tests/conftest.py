"""Shared fixtures: repository paths and a generated copy of a lab in a temporary folder."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO_INVENTORY = REPO / "labs" / "demo-plant" / "inventory.yaml"
FIXED_PASSWORD = "test-password-not-secret"


def seed_fixed_secrets(secrets_dir: Path, users: list[str], api_users: Iterable[str]) -> None:
    """Pre-seed a lab's secrets so generated output is reproducible in golden tests."""
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = {
        "mqtt-passwords.json": json.dumps({u: f"{FIXED_PASSWORD}-{u}" for u in users}),
        "api-users.json": json.dumps({u: f"{FIXED_PASSWORD}-api-{u}" for u in api_users}),
        "api-jwt.key": "golden-jwt-key-for-tests-only",
    }
    for name, text in files.items():
        (secrets_dir / name).write_text(text)
        (secrets_dir / name).chmod(0o600)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
