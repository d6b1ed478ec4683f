"""API users from the inventory: clear passwords only in secrets/, salted hashes in runtime.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dtnlab.cli import main as dtnlab
from dtnlab.generators.api_passwords import hash_prefix, password_hash, password_hashes
from dtnlab.generators.secrets import API_HASHES_FILE, API_USERS_FILE
from dtnlab.runtime.api.users import UserBook
from tests.golden.cases import GOLDEN

KEY = "a-lab-jwt-key-that-keys-the-salts-0123456789"


def _generate(tmp_path: Path, users: dict[str, str] | None) -> Path:
    """`dtnlab generate` of the minimal golden inventory, with `dtnlab.api_users` when given."""
    inventory = yaml.safe_load((GOLDEN / "minimal" / "inventory.yaml").read_text())
    if users is not None:
        inventory["dtnlab"]["api_users"] = users
    source = tmp_path / "inventory.yaml"
    source.write_text(yaml.safe_dump(inventory))
    assert dtnlab(["generate", "-i", str(source), "--labs-dir", str(tmp_path / "labs")]) == 0
    return tmp_path / "labs" / "minimal"


def _runtime_users(lab_dir: Path) -> dict[str, dict[str, str]]:
    users: dict[str, dict[str, str]] = json.loads(
        (lab_dir / "runtime.json").read_text())["api"]["users"]
    return users


def test_default_users_get_passwords_in_secrets_and_hashes_in_runtime(tmp_path: Path) -> None:
    lab_dir = _generate(tmp_path, None)
    passwords = json.loads((lab_dir / "secrets" / API_USERS_FILE).read_text())
    users = _runtime_users(lab_dir)
    assert {name: user["role"] for name, user in users.items()} == {
        "admin": "admin", "operator": "operator", "viewer": "viewer"}
    assert sorted(passwords) == sorted(users)
    book = UserBook.from_config(users)
    assert all(book.verify(name, password) for name, password in passwords.items())
    for name in (API_USERS_FILE, API_HASHES_FILE):
        assert (lab_dir / "secrets" / name).stat().st_mode & 0o777 == 0o600


def test_users_follow_the_inventory_and_keep_their_passwords(tmp_path: Path) -> None:
    lab_dir = _generate(tmp_path, {"admin": "admin", "alice": "operator"})
    first = json.loads((lab_dir / "secrets" / API_USERS_FILE).read_text())
    hashes = _runtime_users(lab_dir)
    lab_dir = _generate(tmp_path, {"admin": "admin", "alice": "viewer", "carol": "operator"})
    second = json.loads((lab_dir / "secrets" / API_USERS_FILE).read_text())
    users = _runtime_users(lab_dir)
    assert sorted(second) == ["admin", "alice", "carol"]
    assert {k: second[k] for k in first} == first  # existing passwords are kept
    assert users["alice"] == {"role": "viewer", "password_hash": hashes["alice"]["password_hash"]}
    lab_dir = _generate(tmp_path, {"admin": "admin"})
    assert list(json.loads((lab_dir / "secrets" / API_USERS_FILE).read_text())) == ["admin"]
    assert list(_runtime_users(lab_dir)) == ["admin"]


def test_hashes_are_salted_per_user_and_reproducible() -> None:
    same = password_hash("alice", "one-long-password", KEY)
    assert same == password_hash("alice", "one-long-password", KEY)
    assert same.startswith("$scrypt$ln=14,r=8,p=1$")
    salts = {password_hash(user, "one-long-password", KEY).split("$")[3]
             for user in ("alice", "bob")}
    salts.add(password_hash("alice", "one-long-password", KEY + "x").split("$")[3])
    assert len(salts) == 3


def test_a_known_hash_is_reused_only_for_the_same_password() -> None:
    # A known hash with the password's salt is kept as it is (no scrypt work), whatever its
    # digest; one made from another password is recomputed.
    kept = hash_prefix("alice", "one-long-password", KEY) + "digest-from-before"
    stale = password_hash("bob", "an-old-long-password", KEY)
    hashes = password_hashes({"alice": "one-long-password", "bob": "a-new-long-password"}, KEY,
                             {"alice": kept, "bob": stale})
    assert hashes == {"alice": kept, "bob": password_hash("bob", "a-new-long-password", KEY)}


def test_a_short_password_written_into_secrets_is_refused_by_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab_dir = _generate(tmp_path, None)
    secret_file = lab_dir / "secrets" / API_USERS_FILE
    passwords = json.loads(secret_file.read_text())
    secret_file.write_text(json.dumps({**passwords, "viewer": "short"}))
    source = tmp_path / "inventory.yaml"
    capsys.readouterr()
    assert dtnlab(["generate", "-i", str(source), "--labs-dir", str(tmp_path / "labs")]) == 2
    assert capsys.readouterr().err == (
        f"error: {secret_file}: 1 problem\n"
        f"  secrets[api-users.json].viewer: password is shorter than 12 characters\n")


def test_a_bad_user_name_or_role_in_the_inventory_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inventory = yaml.safe_load((GOLDEN / "minimal" / "inventory.yaml").read_text())
    inventory["dtnlab"]["api_users"] = {"alice": "root", "bad name": "viewer"}
    source = tmp_path / "inventory.yaml"
    source.write_text(yaml.safe_dump(inventory))
    assert dtnlab(["validate", "-i", str(source)]) == 2
    err = capsys.readouterr().err
    assert ("dtnlab[settings].api_users.alice: Input should be 'viewer', 'operator' or 'admin'"
            in err)
    assert "dtnlab[settings].api_users.bad name.[key]: String should match pattern" in err
