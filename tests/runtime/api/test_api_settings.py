"""Settings from DTN_* variables, placeholder secrets refused, users hashed, the CLI entry."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import ValidationError

from dtnlab.cli import main as dtnlab
from dtnlab.generators.api_passwords import password_hash
from dtnlab.runtime.api import Settings, create_app
from dtnlab.runtime.api.cli import main as api_main
from dtnlab.runtime.api.reload import reload_api
from dtnlab.runtime.api.settings import PlaceholderSecret, check_secret, is_placeholder
from dtnlab.runtime.api.tokens import TokenService
from dtnlab.runtime.api.users import UserBook, allows
from dtnlab.runtime.storage import open_store
from tests.golden.cases import GOLDEN

REAL = "k8Jq2vX9mB4nR7tY1wE5uI3oP6aS0dFgHjKlZxCv"


@pytest.fixture(autouse=True)
def no_dtn_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings() reads DTN_* variables: the ones of the shell running the tests stay out."""
    for name in [n for n in os.environ if n.startswith("DTN_")]:
        monkeypatch.delenv(name)


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


def test_placeholder_lab_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "api-jwt.key").write_text("changeme")
    with pytest.raises(PlaceholderSecret, match="api-jwt.key"):
        TokenService(Settings(), tmp_path, "x", UserBook.from_config(_config({"admin": "admin"})))


def _config(roles: dict[str, str]) -> dict[str, dict[str, str]]:
    """runtime.json's api.users as the generator writes it, password `<name>-password-1`."""
    return {name: {"role": role, "password_hash": password_hash(name, f"{name}-password-1", REAL)}
            for name, role in roles.items()}


def test_users_are_checked_against_their_hashes_and_roles_ranked() -> None:
    book = UserBook.from_config(_config({"admin": "admin", "alice": "operator"}))
    assert {u.name: u.role for u in book.users.values()} == {"admin": "admin", "alice": "operator"}
    alice = book.verify("alice", "alice-password-1")
    assert alice is not None
    assert alice.role == "operator"
    assert book.verify("alice", "admin-password-1") is None
    assert book.verify("alice", "alice-password-2") is None
    assert book.verify("nobody", "alice-password-1") is None
    assert allows("admin", "operator")
    assert not allows("viewer", "operator")


@pytest.mark.parametrize(("entry", "message"), [
    ({"role": "root", "password_hash": "x"}, "api.users.alice.role: 'root' is not a role"),
    ({"role": "viewer"}, "api.users.alice.password_hash is not a `$scrypt$"),
    ({"role": "viewer", "password_hash": "alice-password-1"},
     "api.users.alice.password_hash is not a `$scrypt$"),
    ({"role": "viewer", "password_hash": "$scrypt$ln=30,r=8,p=1$" + "A" * 22 + "$" + "B" * 43},
     "api.users.alice.password_hash has scrypt cost ln=30"),
    ("viewer", "api.users.alice: expected {role, password_hash}"),
], ids=["unknown-role", "no-hash", "clear-password", "huge-cost", "not-an-object"])
def test_malformed_users_are_refused_by_name(entry: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        UserBook.from_config({"alice": entry})


@pytest.mark.parametrize("users", [None, {}], ids=["missing", "empty"])
def test_a_lab_without_users_asks_for_regeneration(users: object) -> None:
    with pytest.raises(ValueError, match="no API users; regenerate the lab"):
        UserBook.from_config(users)


def _lab_with_users(tmp_path: Path, users: dict[str, str]) -> Path:
    """The minimal golden lab, generated by `dtnlab generate` with `dtnlab.api_users` set."""
    inventory = yaml.safe_load((GOLDEN / "minimal" / "inventory.yaml").read_text())
    inventory["dtnlab"]["api_users"] = users
    source = tmp_path / "inventory.yaml"
    source.write_text(yaml.safe_dump(inventory))
    assert dtnlab(["generate", "-i", str(source), "--labs-dir", str(tmp_path / "labs")]) == 0
    return tmp_path / "labs" / "minimal"


@pytest.fixture
def users_client(tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    lab_dir = _lab_with_users(tmp_path, {"root": "admin", "alice": "operator",
                                         "bob.k@plant": "viewer"})
    store = open_store(lab_dir / "run", "")
    store.connect()  # the engine's tables, so an ack of a missing alert is a 404
    settings = Settings(database_url=None, login_rate_per_s=1000, login_burst=1000)
    try:
        with TestClient(create_app(lab_dir, settings, store=store, connect=False)) as client:
            yield client, lab_dir
    finally:
        store.close()


def test_inventory_users_log_in_with_their_roles(users_client: tuple[TestClient, Path]) -> None:
    client, lab_dir = users_client
    secret_file = lab_dir / "secrets" / "api-users.json"
    passwords = json.loads(secret_file.read_text())
    assert sorted(passwords) == ["alice", "bob.k@plant", "root"]
    assert secret_file.stat().st_mode & 0o777 == 0o600
    runtime = (lab_dir / "runtime.json").read_text()
    assert not any(password in runtime for password in passwords.values())

    def login(user: str, password: str) -> Any:
        return client.post("/auth/token", data={"username": user, "password": password})

    roles = {}
    for user, password in passwords.items():
        res = login(user, password)
        assert res.status_code == 200, res.text
        token = {"Authorization": f"Bearer {res.json()['access_token']}"}
        # an operator's action: acking a missing alert is a 404 for operators, 403 for viewers
        roles[user] = (client.get("/auth/me", headers=token).json()["role"],
                       client.post("/alerts/nope/ack", headers=token).status_code)
    assert roles == {"root": ("admin", 404), "alice": ("operator", 404),
                     "bob.k@plant": ("viewer", 403)}
    assert login("alice", passwords["root"]).status_code == 401
    assert login("alice", passwords["alice"] + "x").status_code == 401
    assert login("operator", passwords["alice"]).status_code == 401  # not a user of this lab


def test_a_regen_reloads_the_users(users_client: tuple[TestClient, Path]) -> None:
    """After a regen's SIGHUP a removed user's token and login stop working; a new user logs in."""
    client, lab_dir = users_client
    old = json.loads((lab_dir / "secrets" / "api-users.json").read_text())
    token = client.post("/auth/token", data={"username": "alice", "password": old["alice"]}
                        ).json()["access_token"]
    _lab_with_users(lab_dir.parent.parent, {"root": "admin", "carol": "operator"})
    assert reload_api(client.app.state.api) is not None
    new = json.loads((lab_dir / "secrets" / "api-users.json").read_text())
    assert new["root"] == old["root"]
    assert client.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.post("/auth/token", data={"username": "alice", "password": old["alice"]}
                       ).status_code == 401
    res = client.post("/auth/token", data={"username": "carol", "password": new["carol"]})
    assert res.json()["role"] == "operator"


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
