"""Lab secrets: created once, kept across regenerations under labs/<lab>/secrets/ (mode 0600)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from dtnlab.inventory.errors import InventoryError, Problem
from dtnlab.inventory.model import Lab

from .api_passwords import MIN_PASSWORD_CHARS, password_hashes
from .secret_files import Pending, later, write_secret
from .tls import TlsMaterial, ensure_tls
from .writer import create_file

RUNTIME_USER = "dtn-runtime"
API_USER = "dtn-api"
PASSWORDS_FILE = "mqtt-passwords.json"
JWT_KEY_FILE = "api-jwt.key"
API_USERS_FILE = "api-users.json"  # API users' passwords in clear, for the person to read
API_HASHES_FILE = "api-password-hashes.json"  # their hashes, so a regeneration need not redo them
DB_PASSWORD_FILE = "postgres.password"  # the containerlab database's password (runtime's copy)
# The database node's own copy of it: each copy is owned by the one container user reading it.
DB_NODE_PASSWORD_FILE = "database/postgres.password"
WEBHOOK_SECRET_FILE = "netbox-webhook.secret"  # NetBox signs webhooks to the lab API with it
DEVICE_PASSWORDS_DIR = "devices"  # one file per MQTT user, so a node sees only its own


def _write_device_passwords(folder: Path, passwords: dict[str, str], changed: set[str]) -> None:
    """One file per user; only files that are missing or whose password changed are written."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    present = {path.name for path in folder.iterdir()}
    wanted = {f"{user}.password": user for user in passwords}
    for name, user in wanted.items():
        if name not in present:  # O_CREAT's 0600, less the umask: never wider than 0600
            create_file(f"{folder}/{name}", passwords[user].encode(), 0o600)
        elif user in changed:
            write_secret(folder / name, passwords[user])
    for stale in present - set(wanted):
        (folder / stale).unlink()


@dataclass(frozen=True)
class LabSecrets:
    """Everything secret a lab needs; generators read it, only this module writes it."""

    folder: Path
    mqtt_passwords: dict[str, str]
    jwt_key: str
    api_password_hashes: dict[str, str]  # API user -> scrypt hash; roles are in the Lab model
    tls: TlsMaterial = field(repr=False)

    def __repr__(self) -> str:  # never leak secrets into logs
        return f"LabSecrets(folder={str(self.folder)!r}, users={len(self.mqtt_passwords)})"


def _read_json(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return {str(k): str(v) for k, v in data.items()}


def _api_passwords(lab: Lab, folder: Path, pending: Pending | None) -> dict[str, str]:
    """Every API user of the lab's settings with its password; new users get a random one.

    Raises:
        InventoryError: a password someone wrote into the file is too short.
    """
    path = folder / API_USERS_FILE
    stored = _read_json(path)
    passwords = {user: stored.get(user) or secrets.token_urlsafe(16)
                 for user in sorted(lab.settings.api_users)}
    short = [Problem("secrets", API_USERS_FILE, user,
                     f"password is shorter than {MIN_PASSWORD_CHARS} characters")
             for user, password in passwords.items() if len(password.strip()) < MIN_PASSWORD_CHARS]
    if short:
        raise InventoryError(str(path), short)
    if passwords != stored:
        later(pending, write_secret, path, json.dumps(passwords, indent=1, sort_keys=True))
    return passwords


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
        db_password = secrets.token_urlsafe(24)
        later(pending, write_secret, folder / DB_PASSWORD_FILE, db_password)
    else:
        db_password = (folder / DB_PASSWORD_FILE).read_text()
    if not (folder / DB_NODE_PASSWORD_FILE).exists():  # the password never changes once made
        later(pending, write_secret, folder / DB_NODE_PASSWORD_FILE, db_password)
    if not (folder / WEBHOOK_SECRET_FILE).exists():
        later(pending, write_secret, folder / WEBHOOK_SECRET_FILE, secrets.token_urlsafe(32))
    jwt_path = folder / JWT_KEY_FILE
    if jwt_path.exists():
        jwt_key = jwt_path.read_text().strip()
    else:
        jwt_key = secrets.token_urlsafe(48)
        later(pending, write_secret, jwt_path, jwt_key)
    known_hashes = _read_json(folder / API_HASHES_FILE)
    api_hashes = password_hashes(_api_passwords(lab, folder, pending), jwt_key, known_hashes)
    if api_hashes != known_hashes:
        later(pending, write_secret, folder / API_HASHES_FILE,
              json.dumps(api_hashes, indent=1, sort_keys=True))
    return LabSecrets(
        folder=folder,
        mqtt_passwords=passwords,
        jwt_key=jwt_key,
        api_password_hashes=api_hashes,
        tls=ensure_tls(lab, folder, pending),
    )
