"""API users and roles from the lab's secrets, passwords kept only as scrypt hashes."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .settings import check_secret

log = logging.getLogger(__name__)

USERS_FILE = Path("secrets/api-users.json")
ROLES = ("viewer", "operator", "admin")  # each may do what the ones before it may
RANK = {role: i for i, role in enumerate(ROLES)}
MIN_PASSWORD_BYTES = 12
# scrypt cost: about 50 ms per check on one core, 16 MiB of memory.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                          dklen=32)


def allows(role: str, needed: str) -> bool:
    """Whether `role` may do what `needed` may (admin > operator > viewer)."""
    return RANK.get(role, -1) >= RANK[needed]


@dataclass(frozen=True)
class User:
    name: str
    role: str
    salt: bytes
    hash: bytes


class UserBook:
    """Who may log in. Plaintext passwords are read once, hashed, and dropped."""

    def __init__(self, users: dict[str, User]) -> None:
        self.users = users
        self._dummy_salt = os.urandom(16)

    @classmethod
    def from_lab(cls, lab_dir: Path, roles: dict[str, str] | None = None) -> UserBook:
        """Users of secrets/api-users.json; a user's role is `roles[name]`, else its name
        when that is a role (admin, operator, viewer), else viewer.

        Raises:
            PlaceholderSecret: a password is a placeholder or too short.
            ValueError: the file is missing or malformed, or a role is unknown.
        """
        path = lab_dir / USERS_FILE
        try:
            raw: Any = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot read the API users: {exc}") from None
        if not isinstance(raw, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
            raise ValueError(f"{path}: expected an object of user name -> password")
        roles = roles or {}
        users: dict[str, User] = {}
        for name, password in sorted(raw.items()):
            role = roles.get(name) or (name if name in RANK else "viewer")
            if role not in RANK:
                raise ValueError(f"{path}: user {name!r} has unknown role {role!r}; roles are "
                                 f"{', '.join(ROLES)}")
            check_secret(password, f"{path}: password of {name!r}", MIN_PASSWORD_BYTES)
            salt = os.urandom(16)
            users[name] = User(name, role, salt, scrypt(password, salt))
        log.info("api: %d users (%s)", len(users),
                 ", ".join(f"{u.name}={u.role}" for u in users.values()))
        return cls(users)

    def verify(self, name: str, password: str) -> User | None:
        """The user when the password is right; the same work is done for unknown names."""
        user = self.users.get(name)
        digest = scrypt(password, user.salt if user else self._dummy_salt)
        if user is None or not hmac.compare_digest(digest, user.hash):
            return None
        return user

    def get(self, name: str) -> User | None:
        return self.users.get(name)
