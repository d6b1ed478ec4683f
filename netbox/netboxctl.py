"""Run a local NetBox for dtnlab: install it, configure it, clone a migrated DB, serve, stop."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

NETBOX_VERSION = "4.7.3"
# whitenoise serves /static/ (gunicorn does not); gunicorn is already a NetBox dependency,
# listed so the requirement is explicit.
EXTRA_PACKAGES = ("whitenoise", "gunicorn")
REPO = Path(__file__).resolve().parent.parent
WSGI_DIR = Path(__file__).resolve().parent  # holds wsgi_whitenoise.py
ADMIN_USER = "admin"
# Marks a database as built by this script; the rest of the comment is the key (see db_key()).
KEY_PREFIX = "dtnlab-netbox"
# Set only for the management commands netboxctl runs, so one configuration.py can migrate
# the template database as well as the working one.
DB_OVERRIDE_ENV = "DTNLAB_NETBOX_DB_NAME"
SERVICES = ("gunicorn", "rqworker")
# (HTTP status, JSON body) of /api/status/, or (0, reason) when nothing answers.
ApiStatus = tuple[int, dict[str, object] | str]


class CtlError(Exception):
    """A failure with a message meant for the user (no traceback)."""


def out(text: str, *, stream: TextIO | None = None) -> None:
    """Write one line; a CLI's output, so no print() (the project lints for stray prints)."""
    target = stream or sys.stdout
    target.write(text + "\n")
    target.flush()


def log(msg: str) -> None:
    out(f"netboxctl: {msg}")


@dataclass(frozen=True)
class Config:
    home: Path
    host: str
    port: int
    db: str
    template_db: str
    db_user: str
    pg_host: str
    pg_port: int
    pg_superuser: str
    redis_host: str
    redis_port: int
    redis_tasks_db: int
    redis_cache_db: int
    workers: int
    threads: int
    start_timeout: float
    python: str | None

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ
        home = Path(env.get("DTN_NETBOX_HOME") or REPO / ".netbox").resolve()
        try:
            cfg = cls(
                home=home,
                # Loopback only: this is a lab/test instance with a well-known admin token.
                host="127.0.0.1",
                port=int(env.get("NETBOX_PORT", "8000")),
                db=env.get("DTN_NETBOX_DB", "dtnlab_netbox"),
                # Several working databases (one per checkout) may share one migrated template.
                template_db=env.get("DTN_NETBOX_TEMPLATE_DB", "dtnlab_netbox_template"),
                db_user=env.get("DTN_NETBOX_DB_USER", "dtnlab_netbox"),
                pg_host=env.get("DTN_PG_HOST", "127.0.0.1"),
                pg_port=int(env.get("DTN_PG_PORT", "5432")),
                pg_superuser=env.get("DTN_PG_SUPERUSER", "postgres"),
                redis_host=env.get("DTN_REDIS_HOST", "127.0.0.1"),
                redis_port=int(env.get("DTN_REDIS_PORT", "6379")),
                redis_tasks_db=int(env.get("DTN_NETBOX_REDIS_TASKS_DB", "6")),
                redis_cache_db=int(env.get("DTN_NETBOX_REDIS_CACHE_DB", "7")),
                workers=int(env.get("DTN_NETBOX_WORKERS", "2")),
                threads=int(env.get("DTN_NETBOX_THREADS", "3")),
                start_timeout=float(env.get("DTN_NETBOX_START_TIMEOUT", "180")),
                python=env.get("DTN_NETBOX_PYTHON"),
            )
        except ValueError as err:  # int()/float() of a malformed variable
            raise CtlError(f"bad numeric setting in the environment: {err}") from err
        for name in (cfg.db, cfg.db_user, cfg.template_db):
            # Names are interpolated into SQL, so only plain identifiers are accepted.
            if not name or not all(c in string.ascii_lowercase + string.digits + "_" for c in name):
                raise CtlError(f"invalid PostgreSQL identifier {name!r} (use [a-z0-9_])")
        if cfg.redis_tasks_db == cfg.redis_cache_db:
            raise CtlError("the Redis tasks and caching databases must differ")
        return cfg

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def venv(self) -> Path:
        return self.home / "venv"

    @property
    def venv_python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def conf_file(self) -> Path:
        return self.home / "conf" / "configuration.py"

    @property
    def secrets_file(self) -> Path:
        return self.home / "secrets.json"

    @property
    def env_file(self) -> Path:
        return self.home / "netbox.env"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        return self.home / "log"

    @property
    def static_dir(self) -> Path:
        # Fixed by NetBox: STATIC_ROOT = <NETBOX_ROOT>/static.
        return self.home / "static"

    def pid_file(self, service: str) -> Path:
        return self.run_dir / f"{service}.pid"

    def log_file(self, service: str) -> Path:
        return self.log_dir / f"{service}.log"


# --------------------------------------------------------------------------- small helpers


def write_private(path: Path, text: str) -> None:
    """Write atomically with mode 0600, so secrets are never readable even for a moment."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    tmp.replace(path)
    path.chmod(0o600)


def write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    write_private(path, text)
    return True


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log yet)"


def random_string(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


@contextlib.contextmanager
def state_lock(cfg: Config) -> Iterator[None]:
    """Serialise up/down, e.g. a test's `up --fresh` racing a `make netbox`."""
    cfg.home.mkdir(parents=True, exist_ok=True)
    with (cfg.home / ".lock").open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("waiting for another netboxctl run to finish")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def netbox_env(cfg: Config, db: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    # An inherited NETBOX_CONFIGURATION would make NetBox ignore our configuration.py.
    env.pop("NETBOX_CONFIGURATION", None)
    env.pop(DB_OVERRIDE_ENV, None)
    env.update(
        NETBOX_ROOT=str(cfg.home),
        DJANGO_SETTINGS_MODULE="netbox.settings",
        PYTHONUNBUFFERED="1",
    )
    if db is not None:
        env[DB_OVERRIDE_ENV] = db
    return env


def run_logged(
    cmd: Sequence[str],
    logfile: Path,
    env: dict[str, str],
    what: str,
    progress_word: str | None = None,
) -> None:
    """Run cmd with output to logfile; print a progress line every 30 s for long steps."""
    with logfile.open("w", encoding="utf-8") as logfh:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=cfg_cwd(env),
            stdin=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        count, last = 0, time.monotonic()
        for line in proc.stdout:
            logfh.write(line)
            if progress_word and progress_word in line:
                count += 1
            if time.monotonic() - last > 30:
                logfh.flush()
                log(f"  ... still {what}" + (f" ({count} done)" if progress_word else ""))
                last = time.monotonic()
        rc = proc.wait()
    if rc != 0:
        raise CtlError(f"{what} failed (exit {rc}); last lines of {logfile}:\n{tail(logfile)}")


def cfg_cwd(env: dict[str, str]) -> str:
    # Run NetBox from its own state dir, never from the repo: the repo has a netbox/ folder
    # that must not be mistaken for the NetBox package.
    return env.get("NETBOX_ROOT", "/")


# --------------------------------------------------------------------------- secrets & config


def load_secrets(cfg: Config) -> dict[str, str]:
    """Generate the instance secrets once; later runs reuse them so tokens stay valid."""
    data: dict[str, str] = {}
    if cfg.secrets_file.exists():
        data = json.loads(cfg.secrets_file.read_text(encoding="utf-8"))
    wanted = {
        "secret_key": lambda: random_string(
            64, string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
        ),
        "api_token_pepper": lambda: random_string(64),
        "db_password": lambda: random_string(32),
        # Upper, lower and digit, to satisfy NetBox's default password validators.
        "admin_password": lambda: random_string(20) + "Aa1",
        "token_key": lambda: random_string(12),
        "token_secret": lambda: random_string(40),
    }
    missing = [k for k in wanted if not data.get(k)]
    for key in missing:
        data[key] = wanted[key]()
    if missing or (cfg.secrets_file.stat().st_mode & 0o077):
        write_private(cfg.secrets_file, json.dumps(data, indent=2) + "\n")
    return data


def token_of(sec: dict[str, str]) -> str:
    # NetBox v2 token: `nbt_<key>.<secret>`, accepted after `Bearer ` or `Token `.
    return f"nbt_{sec['token_key']}.{sec['token_secret']}"


def creds_fingerprint(sec: dict[str, str]) -> str:
    """A short digest telling whether a database holds the admin/token of these secrets."""
    material = "\0".join(
        (ADMIN_USER, sec["admin_password"], token_of(sec), sec["api_token_pepper"])
    )
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def render_configuration(cfg: Config, sec: dict[str, str]) -> str:
    # Secrets stay in secrets.json and are read at import time, so this file holds none; the
    # digest line makes new secrets change this file, which restarts the running server.
    digest = hashlib.sha256(json.dumps(sec, sort_keys=True).encode()).hexdigest()[:12]
    return f'''"""NetBox settings for dtnlab, written by netbox/netboxctl.py (edits get lost)."""

# secrets.json digest: {digest}

import json
import os
from pathlib import Path

_SECRETS = json.loads((Path(__file__).resolve().parent.parent / "secrets.json").read_text())

# The server binds to loopback only; these are the names a local client may use.
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
CSRF_TRUSTED_ORIGINS = ["http://127.0.0.1:{cfg.port}", "http://localhost:{cfg.port}"]

DATABASES = {{
    "default": {{
        "ENGINE": "django.db.backends.postgresql",
        # netboxctl points management commands at the template database via this variable.
        "NAME": os.environ.get("{DB_OVERRIDE_ENV}", "{cfg.db}"),
        "USER": "{cfg.db_user}",
        "PASSWORD": _SECRETS["db_password"],
        "HOST": "{cfg.pg_host}",
        "PORT": "{cfg.pg_port}",
        # No persistent connections: `up --fresh` drops the database under a running server.
        "CONN_MAX_AGE": 0,
    }}
}}

_REDIS_HOST, _REDIS_PORT = "{cfg.redis_host}", {cfg.redis_port}
REDIS = {{
    # Separate DB numbers: tasks (RQ queues) and caching are flushed separately.
    "tasks": {{"HOST": _REDIS_HOST, "PORT": _REDIS_PORT, "DATABASE": {cfg.redis_tasks_db}}},
    "caching": {{"HOST": _REDIS_HOST, "PORT": _REDIS_PORT, "DATABASE": {cfg.redis_cache_db}}},
}}

SECRET_KEY = _SECRETS["secret_key"]
API_TOKEN_PEPPERS = {{1: _SECRETS["api_token_pepper"]}}

# No internet here: never phone home or look for releases/plugins.
CENSUS_REPORTING_ENABLED = False
RELEASE_CHECK_URL = None
ISOLATED_DEPLOYMENT = True

# Login stays required (4.7's default); setting LOGIN_REQUIRED only adds a deprecation warning.
DEBUG = False
TIME_ZONE = "UTC"
'''


def render_env_file(cfg: Config, sec: dict[str, str]) -> str:
    return (
        "# NetBox for dtnlab, written by netbox/netboxctl.py up. Mode 0600: holds credentials.\n"
        f"NETBOX_URL={cfg.url}\n"
        f"NETBOX_TOKEN={token_of(sec)}\n"
        f"NETBOX_USERNAME={ADMIN_USER}\n"
        f"NETBOX_PASSWORD={sec['admin_password']}\n"
    )


def write_state_files(cfg: Config, sec: dict[str, str]) -> bool:
    """Write configuration.py and netbox.env; return True when the configuration changed."""
    # Owner-only: the secrets, logs and venv in it are nobody else's business.
    cfg.home.chmod(0o700)
    for sub in ("conf", "run", "log", "media", "scripts", "reports"):
        (cfg.home / sub).mkdir(parents=True, exist_ok=True)
    # Keep the whole state dir out of git without touching the repo's .gitignore.
    gitignore = cfg.home / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("*\n", encoding="utf-8")
    init = cfg.home / "conf" / "__init__.py"
    if not init.exists():
        init.write_text("", encoding="utf-8")
    changed = write_if_changed(cfg.conf_file, render_configuration(cfg, sec))
    write_if_changed(cfg.env_file, render_env_file(cfg, sec))
    cfg.env_file.chmod(0o600)
    return changed


# --------------------------------------------------------------------------- install


def python_ok(exe: str) -> bool:
    try:
        res = subprocess.run(
            [exe, "-c", "import sys; print(sys.version_info >= (3, 12))"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0 and res.stdout.strip() == "True"


def find_python(cfg: Config) -> str:
    """NetBox 4.7 needs Python >= 3.12; pyenv shims may exist yet fail, so each candidate is run."""
    candidates: list[str] = [cfg.python] if cfg.python else []
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    # 3.12 first: the version NetBox 4.7 was tried with here; newer ones only as a fallback.
    for minor in ("3.12", "3.13", "3.14"):
        if found := shutil.which(f"python{minor}"):
            candidates.append(found)
        candidates += sorted(
            (str(p) for p in pyenv_root.glob(f"versions/{minor}.*/bin/python{minor}")), reverse=True
        )
        candidates.append(f"/usr/bin/python{minor}")
    candidates.append(sys.executable)
    for exe in candidates:
        if python_ok(exe):
            return exe
    raise CtlError("no Python >= 3.12 found; set DTN_NETBOX_PYTHON to one")


def installed_versions(cfg: Config) -> dict[str, str]:
    if not cfg.venv_python.exists():
        return {}
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    res = subprocess.run(
        [str(cfg.venv_python), "-c", code, "netbox", *EXTRA_PACKAGES],
        capture_output=True,
        text=True,
    )
    return json.loads(res.stdout) if res.returncode == 0 else {}


def install_ok(cfg: Config) -> bool:
    have = installed_versions(cfg)
    return have.get("netbox") == NETBOX_VERSION and all(p in have for p in EXTRA_PACKAGES)


def ensure_build_deps() -> None:
    """psycopg[c] compiles from source: it needs gcc and the libpq headers."""
    missing = []
    if not shutil.which("gcc"):
        missing.append("gcc")
    if not (Path("/usr/include/postgresql/libpq-fe.h").exists() and shutil.which("pg_config")):
        missing.append("libpq-dev")
    if not missing:
        return
    if os.geteuid() != 0:
        raise CtlError(
            f"missing build dependencies: run `apt-get install -y {' '.join(missing)}` as root"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    log(f"installing {' '.join(missing)} with apt-get")
    if subprocess.run(install, env=env).returncode != 0:
        # Stale package lists are the usual cause; refresh once and retry.
        subprocess.run(["apt-get", "update"], env=env, check=False)
        if subprocess.run(install, env=env).returncode != 0:
            raise CtlError(f"apt-get install {' '.join(missing)} failed")


def ensure_install(cfg: Config) -> bool:
    """Create the venv and install NetBox unless the pinned version is already there."""
    if install_ok(cfg):
        return False
    ensure_build_deps()
    if not (cfg.venv_python.exists() and python_ok(str(cfg.venv_python))):
        python = find_python(cfg)
        log(f"creating venv {cfg.venv} with {python}")
        shutil.rmtree(cfg.venv, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(cfg.venv)], check=True)
    started = time.monotonic()
    log(
        f"installing netbox=={NETBOX_VERSION} {' '.join(EXTRA_PACKAGES)} "
        f"(about 70 s; log: {cfg.log_dir / 'pip.log'})"
    )
    run_logged(
        [
            str(cfg.venv_python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            f"netbox=={NETBOX_VERSION}",
            *EXTRA_PACKAGES,
        ],
        cfg.log_dir / "pip.log",
        netbox_env(cfg),
        "pip install",
    )
    if not install_ok(cfg):
        raise CtlError(
            f"pip ran but netbox=={NETBOX_VERSION} is not importable; see {cfg.log_dir / 'pip.log'}"
        )
    log(f"installed in {time.monotonic() - started:.0f} s")
    return True


# --------------------------------------------------------------------------- PostgreSQL


def psql(cfg: Config, sql: str, db: str = "postgres") -> str:
    cmd = [
        "psql",
        "-h",
        cfg.pg_host,
        "-p",
        str(cfg.pg_port),
        "-U",
        cfg.pg_superuser,
        "-d",
        db,
        "-X",
        "-A",
        "-t",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        sql,
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        # Never echo the SQL: ALTER ROLE statements carry the database password.
        raise CtlError(f"psql failed: {res.stderr.strip()}")
    return res.stdout.strip()


def ensure_role(cfg: Config, sec: dict[str, str]) -> None:
    exists = psql(cfg, f"SELECT 1 FROM pg_roles WHERE rolname = '{cfg.db_user}'")
    verb = "ALTER" if exists else "CREATE"
    psql(cfg, f"{verb} ROLE {cfg.db_user} LOGIN PASSWORD '{sec['db_password']}'")


def db_comment(cfg: Config, db: str) -> str | None:
    """None if the database is missing, else its comment ('' when it has none)."""
    row = psql(
        cfg,
        "SELECT 'x' || coalesce(shobj_description(oid, 'pg_database'), '') "
        f"FROM pg_database WHERE datname = '{db}'",
    )
    return row[1:] if row else None


def db_key(version: str, fingerprint: str) -> str:
    # Stored as the database's COMMENT, so the key can never drift from the database itself.
    return f"{KEY_PREFIX} netbox={version} creds={fingerprint}"


def parse_key(comment: str | None) -> dict[str, str]:
    if not comment or not comment.startswith(KEY_PREFIX + " "):
        return {}
    return dict(part.split("=", 1) for part in comment.split()[1:] if "=" in part)


def set_key(cfg: Config, db: str, key: str) -> None:
    psql(cfg, f"COMMENT ON DATABASE {db} IS '{key}'")


def drop_db(cfg: Config, db: str) -> None:
    # FORCE (PostgreSQL 13+) ends the running server's connections instead of failing.
    psql(cfg, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def migrate(cfg: Config, db: str) -> None:
    started = time.monotonic()
    logfile = cfg.log_dir / f"migrate-{db}.log"
    log(f"migrating database {db} (about 5 min on an empty database; log: {logfile})")
    run_logged(
        [str(cfg.venv / "bin" / "netbox"), "migrate", "--no-input"],
        logfile,
        netbox_env(cfg, db),
        f"migrating {db}",
        progress_word="Applying",
    )
    log(f"migrated {db} in {time.monotonic() - started:.0f} s")


ENSURE_ADMIN = r"""
import json, sys
import django
django.setup()
from users.models import Token, User

s = json.loads(open(sys.argv[1], encoding="utf-8").read())
user = User.objects.filter(username=sys.argv[2]).first()
state = "ok"
if user is None:
    user, state = User(username=sys.argv[2]), "created"
password_ok = user.pk and user.check_password(s["admin_password"])
if not (user.is_superuser and user.is_active and password_ok):
    user.is_superuser = user.is_active = True
    user.set_password(s["admin_password"])
    user.save()
    state = state if state == "created" else "updated"
token = Token.objects.filter(key=s["token_key"]).first()
tstate = "ok"
usable = token is not None and token.user_id == user.pk and token.v2 and token.is_active
if not (usable and token.write_enabled and token.validate(s["token_secret"])):
    if token is not None:
        token.delete()
    # Fixed key and secret from secrets.json, so every database built from the template
    # (and every `up --fresh`) answers to the same NETBOX_TOKEN.
    token = Token(user=user, version=2, key=s["token_key"], token=s["token_secret"],
                  description="dtnlab netboxctl", write_enabled=True)
    token.full_clean()
    token.save()
    tstate = "created"
print(f"user {user.username}: {state}; token: {tstate}")
"""


def ensure_admin(cfg: Config, db: str) -> None:
    # The secrets travel by file path, never on a command line visible in ps.
    res = subprocess.run(
        [str(cfg.venv_python), "-c", ENSURE_ADMIN, str(cfg.secrets_file), ADMIN_USER],
        capture_output=True,
        text=True,
        env=netbox_env(cfg, db),
        cwd=str(cfg.home),
    )
    if res.returncode != 0:
        raise CtlError(f"creating the admin user/token in {db} failed:\n{res.stderr[-3000:]}")
    log(f"{db}: {res.stdout.strip()}")


def ensure_template(cfg: Config, sec: dict[str, str]) -> str:
    """A migrated database with the admin user and token, cloned for every working database."""
    want = db_key(NETBOX_VERSION, creds_fingerprint(sec))
    comment = db_comment(cfg, cfg.template_db)
    have = parse_key(comment)
    if comment == want:
        return want
    if have.get("netbox") == NETBOX_VERSION:
        # Same schema, different secrets (secrets.json was recreated): only re-seed the admin.
        ensure_admin(cfg, cfg.template_db)
    else:
        # Missing, half-built (no key yet) or another NetBox version: rebuild from scratch
        # rather than migrate forward, so a downgrade works too.
        drop_db(cfg, cfg.template_db)
        psql(cfg, f"CREATE DATABASE {cfg.template_db} OWNER {cfg.db_user}")
        migrate(cfg, cfg.template_db)
        ensure_admin(cfg, cfg.template_db)
    # The key is written last: it marks the template as complete.
    set_key(cfg, cfg.template_db, want)
    return want


def ensure_working_db(cfg: Config, template_key: str, fresh: bool) -> bool:
    """Return True when the working database was (re)created from the template."""
    comment = db_comment(cfg, cfg.db)
    if fresh or comment is None:
        started = time.monotonic()
        if comment is not None:
            drop_db(cfg, cfg.db)
        psql(cfg, f"CREATE DATABASE {cfg.db} TEMPLATE {cfg.template_db} OWNER {cfg.db_user}")
        set_key(cfg, cfg.db, template_key)
        log(
            f"database {cfg.db} cloned from {cfg.template_db} in {time.monotonic() - started:.1f} s"
        )
        return True
    if comment == template_key:
        # Same NetBox version as the template, which is fully migrated: `netbox migrate` would
        # only spend ~10 s of start-up confirming there is nothing to do.
        return False
    if parse_key(comment).get("netbox") != NETBOX_VERSION:
        # Upgrade (or a database not made here): migrate in place to keep its data.
        migrate(cfg, cfg.db)
    ensure_admin(cfg, cfg.db)
    set_key(cfg, cfg.db, template_key)
    return False


# --------------------------------------------------------------------------- Redis


def redis_flushdb(cfg: Config, db: int) -> None:
    """FLUSHDB over a raw socket, to stay stdlib-only."""

    def resp(*args: str) -> bytes:
        out = f"*{len(args)}\r\n".encode()
        for arg in args:
            out += f"${len(arg.encode())}\r\n{arg}\r\n".encode()
        return out

    with socket.create_connection((cfg.redis_host, cfg.redis_port), timeout=10) as sock:
        sock.sendall(resp("SELECT", str(db)) + resp("FLUSHDB"))
        buf = b""
        while buf.count(b"\r\n") < 2:
            chunk = sock.recv(4096)
            if not chunk:
                break
            buf += chunk
    replies = buf.split(b"\r\n")[:2]
    if len(replies) < 2 or any(not r.startswith(b"+") for r in replies):
        raise CtlError(f"Redis FLUSHDB {db} failed: {buf[:200]!r}")


# --------------------------------------------------------------------------- processes


def proc_start_time(pid: int) -> str | None:
    """Kernel start time of pid (field 22 of /proc/<pid>/stat), or None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return fields[19]


def running_pid(cfg: Config, service: str) -> int | None:
    """The PID from the pid file, only if that process is still the one we started."""
    try:
        info = json.loads(cfg.pid_file(service).read_text())
        pid = int(info["pid"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    # Same start time and our venv on the command line: not a recycled PID.
    if proc_start_time(pid) != info.get("start"):
        return None
    try:
        cmdline = (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except FileNotFoundError:
        return None
    return pid if str(cfg.venv) in cmdline else None


def outdated(cfg: Config, service: str) -> bool:
    """True if the service runs with another command line than this script would use now."""
    try:
        recorded = json.loads(cfg.pid_file(service).read_text()).get("cmd")
    except (FileNotFoundError, ValueError):
        return False
    return bool(running_pid(cfg, service)) and recorded != service_cmd(cfg, service)


def service_cmd(cfg: Config, service: str) -> list[str]:
    if service == "rqworker":
        # NetBox's rqworker serves the high, default and low queues (webhooks, scripts, jobs).
        return [str(cfg.venv / "bin" / "netbox"), "rqworker"]
    return [
        str(cfg.venv / "bin" / "gunicorn"),
        f"--bind={cfg.host}:{cfg.port}",
        f"--workers={cfg.workers}",
        f"--threads={cfg.threads}",
        # Bulk REST writes are slow here (see NETBOX-NOTES); don't kill them at 30 s.
        "--timeout=300",
        # As NetBox's contrib/gunicorn.py: recycle workers to bound memory growth.
        "--max-requests=5000",
        "--max-requests-jitter=500",
        # Load NetBox once in the master and fork: half the start-up CPU on 2 cores, and
        # recycled workers start instantly. wsgi_whitenoise closes DB connections before forking.
        "--preload",
        # gunicorn 26 otherwise opens ~/.gunicorn/gunicorn.ctl, shared by every gunicorn of
        # this user; nothing here needs runtime control.
        "--no-control-socket",
        f"--pythonpath={WSGI_DIR}",
        "wsgi_whitenoise:application",
    ]


def start_service(cfg: Config, service: str) -> subprocess.Popen[bytes]:
    cmd = service_cmd(cfg, service)
    logfile = cfg.log_file(service)
    with logfile.open("a", encoding="utf-8") as logfh:
        logfh.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} netboxctl starting {service}\n")
        logfh.flush()
        # New session: survives the caller (make, pytest) and gives a process group to stop.
        proc = subprocess.Popen(
            cmd,
            stdout=logfh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=netbox_env(cfg),
            cwd=str(cfg.run_dir),
            start_new_session=True,
        )
    info = {"pid": proc.pid, "start": proc_start_time(proc.pid), "cmd": cmd}
    cfg.pid_file(service).write_text(json.dumps(info) + "\n", encoding="utf-8")
    log(f"started {service} (pid {proc.pid}, log {logfile})")
    return proc


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_leftovers(cfg: Config, service: str) -> None:
    """Kill what survives a dead service, e.g. the workers of a gunicorn master killed by -9.

    Only processes in the recorded process group that run from our venv are touched.
    """
    try:
        pgid = int(json.loads(cfg.pid_file(service).read_text())["pid"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return
    victims = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        state, _ppid, pgrp = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == pgid and state != "Z" and str(cfg.venv).encode() in cmdline:
            victims.append(int(proc.name))
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if victims:
        log(f"{service}: killed leftover processes {victims}")


def stop_service(cfg: Config, service: str, timeout: float = 20.0) -> bool:
    pid = running_pid(cfg, service)
    pidfile = cfg.pid_file(service)
    if pid is None:
        if pidfile.exists():
            kill_leftovers(cfg, service)
            pidfile.unlink()
            log(f"{service}: stale pid file removed")
        return False
    # Graceful first: gunicorn stops its workers, the RQ worker finishes its current job.
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if this very run started it
        if proc_start_time(pid) is None and not group_alive(pid):
            break
        time.sleep(0.2)
    else:
        log(f"{service} did not stop in {timeout:.0f} s; killing its process group")
    # The group id is the PID we started with start_new_session, so it holds only its children.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    log(f"stopped {service} (pid {pid})")
    return True


def port_in_use(cfg: Config) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((cfg.host, cfg.port)) == 0


def api_status(cfg: Config, token: str, timeout: float = 5.0) -> ApiStatus:
    """GET /api/status/ with the token; (0, reason) when nothing answers."""
    req = urllib.request.Request(
        f"{cfg.url}/api/status/",
        headers={"Authorization": f"Token {token}", "Accept": "application/json"},
    )
    # No proxies: an inherited http_proxy must not capture a loopback request.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read().decode(errors="replace")[:300]
    except (OSError, ValueError) as err:
        return 0, str(err)


def healthy(cfg: Config, token: str) -> bool:
    code, body = api_status(cfg, token)
    return code == 200 and isinstance(body, dict) and body.get("netbox-version") == NETBOX_VERSION


def wait_ready(cfg: Config, token: str, procs: dict[str, subprocess.Popen[bytes]]) -> ApiStatus:
    """Wait until /api/status/ answers; fail fast if a service we just started dies."""
    deadline = time.monotonic() + cfg.start_timeout
    status: ApiStatus = (0, "no answer yet")
    while time.monotonic() < deadline:
        for service, proc in procs.items():
            if proc.poll() is not None:
                raise CtlError(
                    f"{service} exited with {proc.returncode}; last lines of "
                    f"{cfg.log_file(service)}:\n{tail(cfg.log_file(service))}"
                )
        status = api_status(cfg, token)
        # 403 also means the server is up; the caller decides what to do about the token.
        if status[0] in (200, 403):
            return status
        time.sleep(0.5)
    logfile = cfg.log_file("gunicorn")
    raise CtlError(
        f"NetBox did not answer {cfg.url}/api/status/ within {cfg.start_timeout:.0f} s "
        f"(last: {status[0]} {status[1]}); see {logfile}:\n{tail(logfile)}"
    )


def ensure_static(cfg: Config) -> None:
    marker = cfg.static_dir / ".dtnlab-netbox-version"
    if marker.exists() and marker.read_text().strip() == NETBOX_VERSION:
        return
    started = time.monotonic()
    run_logged(
        [str(cfg.venv / "bin" / "netbox"), "collectstatic", "--no-input", "--clear"],
        cfg.log_dir / "collectstatic.log",
        netbox_env(cfg),
        "collectstatic",
    )
    marker.write_text(NETBOX_VERSION + "\n")
    log(f"collected static files into {cfg.static_dir} in {time.monotonic() - started:.0f} s")


# --------------------------------------------------------------------------- commands


def cmd_up(cfg: Config, fresh: bool) -> None:
    started = time.monotonic()
    sec = load_secrets(cfg)
    token = token_of(sec)
    config_changed = write_state_files(cfg, sec)
    current = all(running_pid(cfg, s) and not outdated(cfg, s) for s in SERVICES)
    if not fresh and not config_changed and current and healthy(cfg, token):
        log(f"NetBox {NETBOX_VERSION} already running at {cfg.url}; env file {cfg.env_file}")
        return

    if not install_ok(cfg):
        # Never swap packages under running processes.
        for service in SERVICES:
            stop_service(cfg, service)
        ensure_install(cfg)
    ensure_role(cfg, sec)
    template_key = ensure_template(cfg, sec)

    # Restart everything on a config change and whatever runs with an old command line (this
    # script changed, or NETBOX_PORT...); on --fresh the RQ worker is restarted because
    # its queues are flushed and it re-schedules NetBox's system jobs into the new database.
    restart = set(SERVICES) if config_changed else {s for s in SERVICES if outdated(cfg, s)}
    if running_pid(cfg, "gunicorn"):
        code, body = api_status(cfg, token)
        server_ok = (
            code == 200 and isinstance(body, dict) and body.get("netbox-version") == NETBOX_VERSION
        ) or (code == 403 and "token" in str(body).lower())
        if not server_ok:
            restart.add("gunicorn")
    if fresh:
        restart.add("rqworker")
    for service in SERVICES:
        if service in restart:
            stop_service(cfg, service)

    created = ensure_working_db(cfg, template_key, fresh)
    if created:
        # Cached objects and queued jobs belong to the dropped database.
        redis_flushdb(cfg, cfg.redis_cache_db)
        if not running_pid(cfg, "rqworker"):
            redis_flushdb(cfg, cfg.redis_tasks_db)
    ensure_static(cfg)

    procs: dict[str, subprocess.Popen[bytes]] = {}
    for service in SERVICES:
        if running_pid(cfg, service):
            continue
        stop_service(cfg, service)  # only clears a stale pid file and its orphans
        if service == "gunicorn" and port_in_use(cfg):
            raise CtlError(
                f"{cfg.host}:{cfg.port} is used by a process netboxctl did not start; "
                "stop it or set NETBOX_PORT"
            )
        procs[service] = start_service(cfg, service)
    code, body = wait_ready(cfg, token, procs)
    if code == 403:
        # The stored token no longer works (deleted in the UI, database restored elsewhere...).
        log("stored API token rejected; recreating it")
        ensure_admin(cfg, cfg.db)
        code, body = api_status(cfg, token)
    if code != 200 or not isinstance(body, dict):
        raise CtlError(f"NetBox answers {code} to the API token: {body}")
    if body.get("netbox-version") != NETBOX_VERSION:
        raise CtlError(
            f"NetBox reports version {body.get('netbox-version')}, expected {NETBOX_VERSION}"
        )
    log(
        f"NetBox {NETBOX_VERSION} ready at {cfg.url} in {time.monotonic() - started:.1f} s; "
        f"env file {cfg.env_file} (NETBOX_URL, NETBOX_TOKEN, NETBOX_USERNAME, NETBOX_PASSWORD)"
    )


def cmd_down(cfg: Config) -> None:
    stopped = [s for s in reversed(SERVICES) if stop_service(cfg, s)]
    if not stopped:
        log("nothing running")


def cmd_status(cfg: Config) -> int:
    out(f"state dir:  {cfg.home}")
    out(f"url:        {cfg.url}")
    out(f"env file:   {cfg.env_file}" + ("" if cfg.env_file.exists() else " (missing: run up)"))
    have = installed_versions(cfg)
    out(f"installed:  netbox {have.get('netbox', 'no')} (wanted {NETBOX_VERSION})")
    for service in SERVICES:
        pid = running_pid(cfg, service)
        out(
            f"{service + ':':11} "
            + (f"running, pid {pid}" if pid else "stopped")
            + f" (log {cfg.log_file(service)})"
        )
    try:
        for db in (cfg.template_db, cfg.db):
            comment = db_comment(cfg, db)
            out(
                f"{'template:' if db == cfg.template_db else 'database:':11} {db}: "
                + ("missing" if comment is None else (comment or "no dtnlab key"))
            )
    except CtlError as err:
        out(f"database:   unknown ({err})")
    if not cfg.secrets_file.exists():
        out("api:        no secrets yet")
        return 1
    code, body = api_status(cfg, token_of(load_secrets(cfg)))
    if code == 200 and isinstance(body, dict):
        out(f"api:        ok, netbox-version {body.get('netbox-version')}")
        return 0
    out(f"api:        not ready ({code} {str(body)[:120]})")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="install, configure and start NetBox (idempotent)")
    up.add_argument(
        "--fresh",
        action="store_true",
        help="replace the working database with a clean copy of the migrated template",
    )
    sub.add_parser("down", help="stop the processes `up` started")
    sub.add_parser("status", help="show what runs and whether the API answers")
    sub.add_parser("env", help="print the path of the env file with NETBOX_URL/NETBOX_TOKEN")
    args = parser.parse_args(argv)
    try:
        cfg = Config.from_env()
        if args.command == "env":
            out(str(cfg.env_file))
            return 0 if cfg.env_file.exists() else 1
        if args.command == "status":
            return cmd_status(cfg)
        with state_lock(cfg):
            if args.command == "up":
                cmd_up(cfg, args.fresh)
            else:
                cmd_down(cfg)
    except CtlError as err:
        out(f"netboxctl: error: {err}", stream=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
