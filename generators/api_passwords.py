"""API users' password hashes (scrypt, as PHC strings), reproducibly salted like the passwd file."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping

from .passwd import salt_for

# scrypt at its interactive-login cost (2**14 x 8 x 1: 16 MiB, tens of ms a check). The runtime
# reads the cost from each hash, so raising it here needs no change there.
SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P = 14, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
SALT_CONTEXT = b"dtnlab api password salt v1\0"
MIN_PASSWORD_CHARS = 12


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _salt(user: str, password: str, salt_key: str) -> bytes:
    return salt_for(user, password, salt_key, SALT_CONTEXT, SALT_BYTES)


def hash_prefix(user: str, password: str, salt_key: str) -> str:
    """The hash up to its digest: cheap to compute, and equal only for the same password."""
    return (f"$scrypt$ln={SCRYPT_LOG_N},r={SCRYPT_R},p={SCRYPT_P}"
            f"${_b64(_salt(user, password, salt_key))}$")


def password_hash(user: str, password: str, salt_key: str) -> str:
    """`$scrypt$ln=14,r=8,p=1$<salt>$<digest>` (unpadded base64) for one user's password."""
    digest = hashlib.scrypt(password.encode(), salt=_salt(user, password, salt_key),
                            n=2**SCRYPT_LOG_N, r=SCRYPT_R, p=SCRYPT_P, dklen=HASH_BYTES)
    return hash_prefix(user, password, salt_key) + _b64(digest)


def password_hashes(passwords: Mapping[str, str], salt_key: str,
                    known: Mapping[str, str]) -> dict[str, str]:
    """Every user's hash, sorted by user.

    A known hash whose salt matches the password's is kept: the salt is keyed by the password,
    so an unchanged password costs no scrypt work on the next generation.

    Args:
        passwords: user -> clear-text password.
        salt_key: a lab secret that keys the salts, so equal secrets give equal hashes.
        known: user -> hash from an earlier generation (may be stale or empty).
    """
    hashes: dict[str, str] = {}
    for user, password in sorted(passwords.items()):
        old = known.get(user, "")
        prefix = hash_prefix(user, password, salt_key)
        reuse = old.startswith(prefix) and len(old) > len(prefix)
        hashes[user] = old if reuse else password_hash(user, password, salt_key)
    return hashes
