"""JWT access tokens: HS256 with the lab's key or RS256 with a generated key pair."""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .settings import Settings, check_secret
from .users import RANK, UserBook

log = logging.getLogger(__name__)

HS_KEY_FILE = Path("secrets/api-jwt.key")
RS_KEY_FILE = Path("secrets/api-jwt-rs256.pem")
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]
LEEWAY_S = 5


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired or meant for someone else."""


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    name: str
    role: str
    jti: str
    expires: float


def load_or_create_rsa(path: Path) -> rsa.RSAPrivateKey:
    """The lab's RS256 signing key, generated (mode 0600) on first use."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path}: not an RSA private key")
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    tmp.replace(path)
    log.info("api: generated the RS256 signing key %s", path)
    return key


class TokenService:
    """Issues and verifies the API's access tokens.

    Args:
        settings: algorithm, lifetime, and optional key, issuer and audience overrides.
        lab_dir: the lab folder (keys under secrets/).
        lab_name: default issuer dtnlab/<lab> and audience dtnlab-api/<lab>, so a token of
            one lab is worthless in another.
        users: a token is only good while its user exists with the same role.
    """

    def __init__(self, settings: Settings, lab_dir: Path, lab_name: str, users: UserBook) -> None:
        self.algorithm = settings.jwt_algorithm
        self.ttl_s = settings.token_ttl_s
        self.issuer = settings.jwt_issuer or f"dtnlab/{lab_name}"
        self.audience = settings.jwt_audience or f"dtnlab-api/{lab_name}"
        self.users = users
        self._sign_key: Any
        self._verify_key: Any
        if self.algorithm == "HS256":
            if settings.jwt_secret is not None:
                secret = settings.jwt_secret.get_secret_value()
            else:
                path = lab_dir / HS_KEY_FILE
                try:
                    secret = path.read_text().strip()
                except OSError as exc:
                    raise ValueError(f"{path}: cannot read the JWT key: {exc}") from None
                check_secret(secret, str(path))
            self._sign_key = self._verify_key = secret.encode()
        else:
            private = load_or_create_rsa(lab_dir / RS_KEY_FILE)
            self._sign_key, self._verify_key = private, private.public_key()

    def public_key_pem(self) -> str | None:
        """The RS256 verification key (for other services), None with HS256."""
        if self.algorithm != "RS256":
            return None
        return str(self._verify_key.public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo).decode())

    def issue(self, name: str, role: str, now: float | None = None) -> tuple[str, int]:
        """A signed token for a user; returns (token, lifetime in seconds)."""
        iat = int(now if now is not None else time.time())
        claims = {"sub": name, "role": role, "iss": self.issuer, "aud": self.audience,
                  "iat": iat, "nbf": iat, "exp": iat + self.ttl_s, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self._sign_key, algorithm=self.algorithm), self.ttl_s

    def verify(self, token: str) -> Principal:
        """The principal of a valid token.

        Only the configured algorithm is accepted, so `alg: none` and HS256 signed with the
        RS256 public key both fail.

        Raises:
            InvalidToken: with a reason safe to show the client.
        """
        try:
            claims = jwt.decode(token, self._verify_key, algorithms=[self.algorithm],
                                audience=self.audience, issuer=self.issuer, leeway=LEEWAY_S,
                                options={"require": REQUIRED_CLAIMS})
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("token is from another issuer") from None
        except jwt.PyJWTError:
            raise InvalidToken("invalid token") from None
        name, role = claims.get("sub"), claims.get("role")
        user = self.users.get(name) if isinstance(name, str) else None
        if user is None or role not in RANK or user.role != role:
            raise InvalidToken("token does not match a current user")
        return Principal(user.name, user.role, str(claims["jti"]), float(claims["exp"]))
