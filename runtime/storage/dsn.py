"""The database URL a node uses: $DTN_DATABASE_URL, with its password from a file when given."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

DATABASE_URL_ENV = "DTN_DATABASE_URL"
# The password lives in a file (a container's bound secret), never in the topology or the URL.
PASSWORD_FILE_ENV = "DTN_DATABASE_PASSWORD_FILE"


class DatabaseSettingError(ValueError):
    """The database URL or its password file cannot be used; the message names which."""


def with_password(url: str, password_file: Path | str | None) -> str:
    """`url` with the password read from `password_file`, unless the URL has one already.

    Raises:
        DatabaseSettingError: the file cannot be read or is empty.
    """
    if not password_file:
        return url
    parts = urlsplit(url)
    if parts.password is not None:
        return url  # an explicit password wins over the file
    try:
        password = Path(password_file).read_text().strip()
    except OSError as exc:
        raise DatabaseSettingError(f"{PASSWORD_FILE_ENV} {password_file}: cannot read the "
                                   f"database password: {exc.strerror or exc}") from None
    if not password:
        raise DatabaseSettingError(f"{PASSWORD_FILE_ENV} {password_file}: the file is empty")
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{user}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def database_url(url: str | None = None,
                 environ: Mapping[str, str] | None = None) -> str | None:
    """The URL to store into: `url`, else $DTN_DATABASE_URL; None means SQLite.

    Args:
        url: given on the command line (wins over the environment).
        environ: the node's environment (default: this process's).
    """
    env = os.environ if environ is None else environ
    url = url if url is not None else env.get(DATABASE_URL_ENV)
    if not url:
        return None
    return with_password(url, env.get(PASSWORD_FILE_ENV))
