"""Settings from DTN_* variables, placeholder secrets refused, users hashed, the CLI entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from dtnlab.runtime.api import Settings
from dtnlab.runtime.api.cli import main as api_main
from dtnlab.runtime.api.settings import PlaceholderSecret, check_secret, is_placeholder
from dtnlab.runtime.api.tokens import TokenService
from dtnlab.runtime.api.users import UserBook, allows

REAL = "k8Jq2vX9mB4nR7tY1wE5uI3oP6aS0dFgHjKlZxCv"


def test_settings_read_dtn_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTN_API_PORT", "9100")
    monkeypatch.setenv("DTN_JWT_ALGORITHM", "RS256")
    monkeypatch.setenv("DTN_TOKEN_TTL_S", "600")
    monkeypatch.setenv("DTN_JWT_SECRET", REAL)
    settings = Settings()
    assert settings.api_port == 9100
    assert settings.jwt_algorithm == "RS256"
    assert settings.token_ttl_s == 600
    assert settings.jwt_secret is not None
    assert REAL not in repr(settings)


@pytest.mark.parametrize("secret", ["changeme", "CHANGE-ME", "secret", "", "   ",
                                    "replace-me-with-a-real-secret-please",
                                    "<your-jwt-secret-goes-here-xxxxxxxxxxx>", "short-but-real"],
                         ids=["changeme", "CHANGE-ME", "secret", "empty", "blank", "replace-me",
                              "template", "too-short"])
def test_placeholder_jwt_secret_is_refused(monkeypatch: pytest.MonkeyPatch,
                                           secret: str) -> None:
    monkeypatch.setenv("DTN_JWT_SECRET", secret)
    with pytest.raises(ValidationError, match="DTN_JWT_SECRET"):
        Settings()


def test_placeholder_database_password_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTN_DATABASE_URL", "postgresql://dtn:changeme@db/dtn")
    with pytest.raises(ValidationError, match="placeholder"):
        Settings()
    monkeypatch.setenv("DTN_DATABASE_URL", "postgresql://postgres@127.0.0.1/dtn")
    assert Settings().database_url is not None


def test_secret_checks() -> None:
    assert is_placeholder("changeme")
    assert not is_placeholder(REAL)
    assert check_secret(REAL, "key") == REAL
    with pytest.raises(PlaceholderSecret, match="shorter"):
        check_secret("abc", "key")


def _lab(tmp_path: Path, key: str, users: dict[str, str]) -> Path:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "api-jwt.key").write_text(key)
    (tmp_path / "secrets" / "api-users.json").write_text(json.dumps(users))
    return tmp_path


def test_placeholder_lab_key_is_refused(tmp_path: Path) -> None:
    lab = _lab(tmp_path, "changeme", {"admin": "a-long-admin-password"})
    with pytest.raises(PlaceholderSecret, match="api-jwt.key"):
        TokenService(Settings(), lab, "x", UserBook.from_lab(lab))


def test_users_are_hashed_and_roles_ranked(tmp_path: Path) -> None:
    lab = _lab(tmp_path, REAL, {"admin": "a-long-admin-password", "operator": "op-password-123",
                                "alice": "alice-password-1"})
    book = UserBook.from_lab(lab, {"alice": "operator"})
    assert {u.name: u.role for u in book.users.values()} == {
        "admin": "admin", "operator": "operator", "alice": "operator"}
    assert all(len(u.hash) == 32 and b"password" not in u.hash for u in book.users.values())
    assert book.verify("alice", "alice-password-1") is not None
    assert book.verify("alice", "wrong") is None
    assert book.verify("nobody", "x") is None
    assert allows("admin", "operator")
    assert not allows("viewer", "operator")


@pytest.mark.parametrize("password", ["admin", "changeme", "short"], ids=str)
def test_weak_user_password_is_refused(tmp_path: Path, password: str) -> None:
    lab = _lab(tmp_path, REAL, {"admin": password})
    with pytest.raises(PlaceholderSecret):
        UserBook.from_lab(lab)


def test_cli_refuses_a_placeholder_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DTN_JWT_SECRET", "changeme")
    assert api_main(["--lab", str(tmp_path)]) == 2
    assert "DTN_JWT_SECRET" in capsys.readouterr().err


def test_cli_reports_a_missing_lab(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert api_main(["--lab", str(tmp_path / "nope")]) == 2
    assert "runtime.json" in capsys.readouterr().err


def test_database_password_comes_from_its_file(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    password = tmp_path / "postgres.password"
    password.write_text("s3cret/with:odd@chars\n")
    monkeypatch.setenv("DTN_DATABASE_URL", "postgresql://dtn@clab-lab-database:5432/dtn")
    monkeypatch.setenv("DTN_DATABASE_PASSWORD_FILE", str(password))
    db, audit = Settings().database_urls()
    assert db == "postgresql://dtn:s3cret%2Fwith%3Aodd%40chars@clab-lab-database:5432/dtn"
    assert audit == db
    password.write_text("changeme")
    with pytest.raises(PlaceholderSecret, match=str(password)):
        Settings().database_urls()
    password.unlink()
    with pytest.raises(ValueError, match=f"DTN_DATABASE_PASSWORD_FILE {password}: cannot read"):
        Settings().database_urls()
