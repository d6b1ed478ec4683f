"""The URL a node stores into: $DTN_DATABASE_URL with the password from its file."""

from __future__ import annotations

from pathlib import Path

import pytest

from dtnlab.runtime.storage import DatabaseSettingError, PostgresStore, SqliteStore, open_store
from dtnlab.runtime.storage.dsn import database_url, with_password


def test_the_password_file_fills_a_url_without_password(tmp_path: Path) -> None:
    file = tmp_path / "pw"
    file.write_text("p@ss word\n")
    env = {"DTN_DATABASE_URL": "postgresql://dtn@db:5432/dtn",
           "DTN_DATABASE_PASSWORD_FILE": str(file)}
    assert database_url(None, env) == "postgresql://dtn:p%40ss%20word@db:5432/dtn"
    assert database_url("postgresql://other@db2/x", env) == "postgresql://other:p%40ss%20word@db2/x"
    assert with_password("postgresql://dtn:given@db/dtn", file) == "postgresql://dtn:given@db/dtn"
    assert database_url(None, {"DTN_DATABASE_PASSWORD_FILE": str(file)}) is None  # SQLite
    assert isinstance(open_store(tmp_path, environ=env), PostgresStore)
    assert isinstance(open_store(tmp_path, environ={}), SqliteStore)


def test_an_unreadable_or_empty_password_file_is_named(tmp_path: Path) -> None:
    env = {"DTN_DATABASE_URL": "postgresql://dtn@db/dtn",
           "DTN_DATABASE_PASSWORD_FILE": str(tmp_path / "missing")}
    with pytest.raises(DatabaseSettingError, match=f"{tmp_path / 'missing'}: cannot read"):
        open_store(tmp_path, environ=env)
    (tmp_path / "empty").write_text("\n")
    env["DTN_DATABASE_PASSWORD_FILE"] = str(tmp_path / "empty")
    with pytest.raises(DatabaseSettingError, match="is empty"):
        database_url(None, env)
