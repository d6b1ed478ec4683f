"""Mosquitto 2 password file lines in its own `$7$` format (PBKDF2-SHA512), reproducibly salted."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping

# What mosquitto_passwd 2.0 writes and the broker expects: `user:$7$<iterations>$<salt>$<hash>`
# with standard, padded base64 (checked against /usr/bin/mosquitto_passwd 2.0.11).
ITERATIONS = 101
SALT_BYTES = 12
HASH_BYTES = 64
SALT_CONTEXT = b"dtnlab mosquitto passwd salt v1\0"


def salt_for(user: str, password: str, salt_key: str, context: bytes = SALT_CONTEXT,
             size: int = SALT_BYTES) -> bytes:
    """A salt unique per user and password, yet the same on every run with the same secrets.

    Random salts would rewrite the passwd file on every generation; an HMAC keyed by a lab
    secret keeps it byte-identical while salts stay unpredictable and never repeat across users.
    `context` keeps the salts of different password files apart.
    """
    message = context + user.encode() + b"\0" + password.encode()
    return hmac.digest(salt_key.encode(), message, "sha256")[:size]


def password_hash(password: str, salt: bytes, iterations: int = ITERATIONS) -> str:
    """The `$7$...` hash Mosquitto 2 stores for `password`."""
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, HASH_BYTES)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def _check_user(user: str) -> str:
    # ':' splits user from hash and a newline would start a forged entry
    if not user or any(c in user for c in ":\n\r\0"):
        raise ValueError(f"MQTT user name {user!r} cannot go into a Mosquitto password file")
    return user


def passwd_lines(items: Iterable[tuple[str, str]], salt_key: str) -> list[str]:
    return [f"{_check_user(user)}:{password_hash(password, salt_for(user, password, salt_key))}"
            for user, password in items]


def render_passwd(passwords: Mapping[str, str], salt_key: str) -> str:
    """The password file for `passwords` (user -> password), one line per user, sorted.

    Args:
        passwords: every MQTT user and its clear-text password.
        salt_key: a lab secret that keys the salts, so equal secrets give equal files.

    Returns:
        The file's text, ending in a newline.
    """
    lines = passwd_lines(sorted(passwords.items()), salt_key)
    return "".join(f"{line}\n" for line in lines)
