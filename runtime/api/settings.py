"""API settings from DTN_* environment variables; placeholder secrets are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..storage.dsn import with_password

MIN_SECRET_BYTES = 32
API_HOST_ENV = "DTN_API_HOST"  # Settings.api_host (env_prefix DTN_); a container sets 0.0.0.0
# Whole values that are never secrets, and fragments that only templates and docs contain.
PLACEHOLDER_VALUES = frozenset({
    "changeme", "change-me", "change_me", "secret", "password", "passw0rd", "placeholder",
    "example", "default", "admin", "root", "test", "dev", "jwt-secret", "your-secret", "xxx",
    "todo", "none", "null",
})
PLACEHOLDER_FRAGMENTS = ("changeme", "change-me", "change_me", "replace-me", "replaceme",
                         "replace_me", "placeholder", "your-secret", "your_secret", "<", ">",
                         "xxxxxx", "${")


class PlaceholderSecret(ValueError):
    """A secret is empty, too short or a value copied from a template."""


def is_placeholder(value: str) -> bool:
    """Whether `value` looks like a template's stand-in rather than a generated secret."""
    v = value.strip().lower()
    return not v or v in PLACEHOLDER_VALUES or any(f in v for f in PLACEHOLDER_FRAGMENTS)


def check_secret(value: str, what: str, min_bytes: int = MIN_SECRET_BYTES) -> str:
    """Return `value` when it can be a real secret.

    Raises:
        PlaceholderSecret: naming `what`, never echoing the value.
    """
    if is_placeholder(value):
        raise PlaceholderSecret(f"{what} is a placeholder; generate a real secret")
    if len(value.encode()) < min_bytes:
        raise PlaceholderSecret(f"{what} is shorter than {min_bytes} bytes")
    return value


class Settings(BaseSettings):
    """Everything the API node can be told from its environment (prefix DTN_).

    The lab folder provides the rest: the port (runtime.json api.port), the JWT key
    (secrets/api-jwt.key) and the users with their roles and password hashes
    (runtime.json api.users).
    """

    model_config = SettingsConfigDict(env_prefix="DTN_", extra="ignore", frozen=True)

    api_host: str = "127.0.0.1"
    api_port: int | None = Field(default=None, ge=1, le=65535,
                                 description="default: runtime.json")
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: SecretStr | None = Field(default=None,
                                         description="HS256 key; default: the lab's key")
    jwt_issuer: str | None = Field(default=None, description="default: dtnlab/<lab>")
    jwt_audience: str | None = Field(default=None, description="default: dtnlab-api/<lab>")
    token_ttl_s: int = Field(default=3600, ge=60, le=7 * 86400)
    database_url: SecretStr | None = None
    database_password_file: Path | None = Field(
        default=None, description="password of database_url and audit_url when they have none")
    rate_per_s: float = Field(default=100.0, gt=0,
                              description="requests per second per client address")
    rate_burst: int = Field(default=200, ge=1)
    token_rate_per_s: float = Field(default=50.0, gt=0,
                                    description="requests per second per token")
    token_rate_burst: int = Field(default=100, ge=1)
    login_rate_per_s: float = Field(default=0.2, gt=0,
                                    description="login attempts per second per client")
    login_burst: int = Field(default=10, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    command_timeout_s: float = Field(default=5.0, gt=0, le=60)
    maintenance_timeout_s: float = Field(default=5.0, gt=0, le=60)
    ws_flush_s: float = Field(default=0.1, gt=0, le=5)
    ws_max_pending: int = Field(default=5000, ge=10)
    engine_stale_s: float = Field(default=5.0, gt=0)
    audit_url: SecretStr | None = Field(default=None,
                                        description="default: database_url, else SQLite")

    def database_urls(self) -> tuple[str | None, str | None]:
        """(storage URL, audit URL) with the password file applied; None means SQLite.

        Raises:
            DatabaseSettingError: the password file cannot be read.
            PlaceholderSecret: the password it holds is a placeholder.
        """
        db = self.database_url.get_secret_value() if self.database_url else None
        audit = self.audit_url.get_secret_value() if self.audit_url else db
        file = self.database_password_file
        urls = (with_password(db, file) if db else None,
                with_password(audit, file) if audit else None)
        passwords = [urlsplit(u).password for u in urls if u]
        if file and any(p is not None and is_placeholder(p) for p in passwords):
            raise PlaceholderSecret(f"the database password in {file} is a placeholder")
        return urls

    @field_validator("jwt_secret")
    @classmethod
    def _real_jwt_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_secret(value.get_secret_value(), "DTN_JWT_SECRET")
        return value

    @field_validator("database_url", "audit_url")
    @classmethod
    def _real_database_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            password = urlsplit(value.get_secret_value()).password
            if password is not None and is_placeholder(password):
                raise PlaceholderSecret("the database URL's password is a placeholder")
        return value
