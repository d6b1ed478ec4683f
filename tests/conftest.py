"""Shared fixtures: repository paths and a generated copy of a lab in a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO_INVENTORY = REPO / "labs" / "demo-plant" / "inventory.yaml"
FIXED_PASSWORD = "test-password-not-secret"


def seed_fixed_secrets(secrets_dir: Path, users: list[str]) -> None:
    """Pre-seed a lab's secrets so generated output is reproducible in golden tests."""
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    passwords = {u: f"{FIXED_PASSWORD}-{u}" for u in users}
    (secrets_dir / "mqtt-passwords.json").write_text(json.dumps(passwords))
    (secrets_dir / "api-jwt.key").write_text("golden-jwt-key-for-tests-only")
    (secrets_dir / "mqtt-passwords.json").chmod(0o600)
    (secrets_dir / "api-jwt.key").chmod(0o600)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
