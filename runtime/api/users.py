"""API users and roles from runtime.json: a salted scrypt hash each, never a password."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

ROLES = ("viewer", "operator", "admin")  # each may do what the ones before it may
RANK = {role: i for i, role in enumerate(ROLES)}
# What the generator writes: `$scrypt$ln=<log2 n>,r=<r>,p=<p>$<salt>$<digest>`, unpadded base64.
_PHC = re.compile(r"^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{16,})"
                  r"\$([A-Za-z0-9+/]{22,})$")
MAX_SCRYPT_BYTES = 64 * 1024 * 1024  # a hash asking for more memory than this is refused
DUMMY_PARAMS = (14, 8, 1)  # unknown names cost what a generated hash costs


def allows(role: str, needed: str) -> bool:
    """Whether `role` may do what `needed` may (admin > operator > viewer)."""
    return RANK.get(role, -1) >= RANK[needed]


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


@dataclass(frozen=True)
class ScryptHash:
    log_n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> ScryptHash:
        """Raises ValueError when `text` is not a scrypt hash this runtime can check."""
        match = _PHC.match(text)
        if match is None:
            raise ValueError("is not a `$scrypt$ln=..,r=..,p=..$salt$digest` hash")
        log_n, r, p = (int(match.group(i)) for i in (1, 2, 3))
        if not (1 <= log_n <= 20 and r >= 1 and p >= 1) or 129 * r * 2**log_n > MAX_SCRYPT_BYTES:
            raise ValueError(f"has scrypt cost ln={log_n}, r={r}, p={p} out of range")
        try:
            salt, digest = _unb64(match.group(4)), _unb64(match.group(5))
        except binascii.Error:
            raise ValueError("has a salt or digest that is not base64") from None
        return cls(log_n, r, p, salt, digest)

    def check(self, password: str) -> bool:
        """Whether `password` hashes to the digest; the comparison takes constant time."""
        computed = hashlib.scrypt(password.encode(), salt=self.salt, n=2**self.log_n, r=self.r,
                                  p=self.p, dklen=len(self.digest), maxmem=MAX_SCRYPT_BYTES)
        return hmac.compare_digest(computed, self.digest)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password: ScryptHash


class UserBook:
    """Who may log in, from runtime.json's `api.users`: {name: {role, password_hash}}."""

    def __init__(self, users: dict[str, User]) -> None:
        self.users = users
        self._dummy = ScryptHash(*DUMMY_PARAMS, os.urandom(16), os.urandom(32))

    @classmethod
    def from_config(cls, raw: Any, where: str = "runtime.json api.users") -> UserBook:
        """The users of a lab's runtime.json `api.users` section.

        Raises:
            ValueError: naming the user and field, when a user, role or hash is malformed.
        """
        if not isinstance(raw, dict) or not raw:
            raise ValueError(f"{where}: no API users; regenerate the lab (`dtnlab generate`)")
        users: dict[str, User] = {}
        for name, entry in sorted(raw.items()):
            if not isinstance(entry, dict):
                raise ValueError(f"{where}.{name}: expected {{role, password_hash}}")
            role = entry.get("role")
            if role not in RANK:
                raise ValueError(f"{where}.{name}.role: {role!r} is not a role; roles are "
                                 f"{', '.join(ROLES)}")
            try:
                password = ScryptHash.parse(str(entry.get("password_hash", "")))
            except ValueError as exc:
                raise ValueError(f"{where}.{name}.password_hash {exc}") from None
            users[str(name)] = User(str(name), str(role), password)
        log.info("api: %d users (%s)", len(users),
                 ", ".join(f"{u.name}={u.role}" for u in users.values()))
        return cls(users)

    def verify(self, name: str, password: str) -> User | None:
        """The user when the password is right; an unknown name costs the same scrypt work."""
        user = self.users.get(name)
        right = (user.password if user else self._dummy).check(password)
        return user if user is not None and right else None

    def get(self, name: str) -> User | None:
        return self.users.get(name)
