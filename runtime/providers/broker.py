"""The lab's Mosquitto as a local process: its files staged in run/broker/ for the user it runs as.

mosquitto/local.conf's paths are relative to the lab folder (mosquitto/passwd, secrets/server.key,
run/mosquitto/). Mosquitto started as root drops to the `mosquitto` user right after reading its
config and then cannot read the 0600 server key, nor reach a lab under a 0700 folder (pytest's
tmp_path). So, as root, the broker's files are copied into run/broker/ (owned by that user, 0700)
and the broker is started directly as that user with run/broker/ as its working directory: the
kernel resolves relative paths from there without checking the folders above it. run/broker/run
links back to run/, so persistence and the broker log stay in run/mosquitto/ as the config says.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
LOCAL_CONF = Path("mosquitto/local.conf")
STAGE_DIR = Path("run/broker")
DATA_DIR = Path("run/mosquitto")
BROKER_LOG = DATA_DIR / "mosquitto.log"
SECRET_FILES = (Path("secrets/server.key"),)
BROKER_USERS = ("mosquitto", "nobody")


@dataclass(frozen=True)
class BrokerAccount:
    uid: int
    gid: int
    name: str


def broker_account() -> BrokerAccount | None:
    """The unprivileged user the broker runs as when we are root; None means ourselves."""
    if os.geteuid() != 0:
        return None
    for name in BROKER_USERS:
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return BrokerAccount(entry.pw_uid, entry.pw_gid, name)
    return None  # no such user (a minimal container): run as root, the config is ours


def stage_broker(lab_dir: Path, account: BrokerAccount | None) -> Path:
    """Copy the broker's files into run/broker/ (again on every start: they may be regenerated).

    Returns:
        The working directory to start mosquitto in, with `-c mosquitto/local.conf`.
    """
    stage = lab_dir / STAGE_DIR
    stage.mkdir(parents=True, exist_ok=True, mode=0o700)
    (lab_dir / DATA_DIR).mkdir(parents=True, exist_ok=True)
    shutil.copytree(lab_dir / "mosquitto", stage / "mosquitto", dirs_exist_ok=True)
    for secret in SECRET_FILES:
        if (lab_dir / secret).exists():
            (stage / secret).parent.mkdir(exist_ok=True, mode=0o700)
            shutil.copyfile(lab_dir / secret, stage / secret)
            (stage / secret).chmod(0o600)
    link = stage / "run"
    if not link.is_symlink():
        link.symlink_to("..", target_is_directory=True)
    if account is not None:
        (lab_dir / "run").chmod(0o755)  # the broker passes through run/ to reach run/mosquitto/
        owned = [stage, *[p for p in stage.rglob("*") if not p.is_symlink()],
                 lab_dir / DATA_DIR, *(lab_dir / DATA_DIR).iterdir()]
        for path in owned:
            os.chown(path, account.uid, account.gid, follow_symlinks=False)
    return stage


def broker_argv() -> list[str]:
    return [MOSQUITTO, "-c", str(LOCAL_CONF)]
