"""Lab secrets: created once, kept across regenerations under labs/<lab>/secrets/ (mode 0600)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from dtnlab.inventory.model import Lab

from .secret_files import Pending, later, write_secret
from .tls import TlsMaterial, ensure_tls

RUNTIME_USER = "dtn-runtime"
API_USER = "dtn-api"
PASSWORDS_FILE = "mqtt-passwords.json"
JWT_KEY_FILE = "api-jwt.key"
API_USERS_FILE = "api-users.json"
DB_PASSWORD_FILE = "postgres.password"  # the containerlab database node's password
WEBHOOK_SECRET_FILE = "netbox-webhook.secret"  # NetBox signs webhooks to the lab API with it
DEVICE_PASSWORDS_DIR = "devices"  # one file per MQTT user, so a node sees only its own


def _write_device_passwords(folder: Path, passwords: dict[str, str], changed: set[str]) -> None:
    """One file per user; only files that are missing or whose password changed are written."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    present = {path.name for path in folder.iterdir()}
    wanted = {f"{user}.password": user for user in passwords}
    for name, user in wanted.items():
        if name not in present or user in changed:
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(passwords[user])
    for stale in present - set(wanted):
        (folder / stale).unlink()


@dataclass(frozen=True)
class LabSecrets:
    """Everything secret a lab needs; generators read it, only this module writes it."""

    folder: Path
    mqtt_passwords: dict[str, str]
    jwt_key: str
    api_passwords: dict[str, str]
    tls: TlsMaterial = field(repr=False)

    def __repr__(self) -> str:  # never leak secrets into logs
        return f"LabSecrets(folder={str(self.folder)!r}, users={len(self.mqtt_passwords)})"


def _read_json(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return {str(k): str(v) for k, v in data.items()}


def ensure_secrets(lab: Lab, folder: Path, pending: Pending | None = None) -> LabSecrets:
    """Load the lab's secrets, adding what new devices need; existing ones are never changed.

    Credentials of devices no longer in the lab are dropped, so they stop working at the broker.

    Args:
        lab: the lab.
        folder: its secrets folder.
        pending: when given, every file write is queued here instead of done: the caller runs
            them once it knows the lab will be written (None: write now).
    """
    users = [d.id for d in lab.twins] + [RUNTIME_USER, API_USER]
    stored = _read_json(folder / PASSWORDS_FILE)
    passwords = {user: stored.get(user) or secrets.token_urlsafe(24) for user in sorted(users)}
    if passwords != stored:
        later(pending, write_secret, folder / PASSWORDS_FILE,
              json.dumps(passwords, indent=1, sort_keys=True))
    changed = {u for u, pw in passwords.items() if stored.get(u) not in (None, pw)}
    later(pending, _write_device_passwords, folder / DEVICE_PASSWORDS_DIR, passwords, changed)
    if not (folder / DB_PASSWORD_FILE).exists():
        later(pending, write_secret, folder / DB_PASSWORD_FILE, secrets.token_urlsafe(24))
    if not (folder / WEBHOOK_SECRET_FILE).exists():
        later(pending, write_secret, folder / WEBHOOK_SECRET_FILE, secrets.token_urlsafe(32))
    jwt_path = folder / JWT_KEY_FILE
    if jwt_path.exists():
        jwt_key = jwt_path.read_text().strip()
    else:
        jwt_key = secrets.token_urlsafe(48)
        later(pending, write_secret, jwt_path, jwt_key)
    api_stored = _read_json(folder / API_USERS_FILE)
    api_passwords = {u: api_stored.get(u) or secrets.token_urlsafe(16)
                     for u in ("admin", "operator", "viewer")}
    if api_passwords != api_stored:
        later(pending, write_secret, folder / API_USERS_FILE,
              json.dumps(api_passwords, indent=1, sort_keys=True))
    return LabSecrets(
        folder=folder,
        mqtt_passwords=passwords,
        jwt_key=jwt_key,
        api_passwords=api_passwords,
        tls=ensure_tls(lab, folder, pending),
    )
