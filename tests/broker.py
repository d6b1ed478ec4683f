"""Run the machine's real Mosquitto on a generated lab's mosquitto/local.conf, for tests.

Usage::

    lab = with_free_ports(lab)                # settings ports -> free loopback ports
    render and write the lab into lab_dir       # mosquitto/ and secrets/server.key are needed
    with Broker(lab_dir) as broker:
        client.connect("127.0.0.1", broker.mqtt_port)

The broker's files are copied into a private temporary folder that becomes its working
directory, because local.conf's paths are relative. As root, that folder is handed to the
`mosquitto` user and the broker is started as that user: mosquitto started as root would drop
to `mosquitto` right after reading its config and could no longer read the 0600 server key.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from dtnlab.generators import mosquitto
from dtnlab.generators.secrets import LabSecrets, ensure_secrets
from dtnlab.inventory.model import Lab
from tests.waiting import stop_process

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
LOCAL_CONF = Path("mosquitto/local.conf")
SERVER_KEY = Path("secrets/server.key")
LOG = Path("run/mosquitto/mosquitto.log")
LISTENER = re.compile(r"^listener (\d+)(.*)$", re.MULTILINE)
BROKER_USERS = ("mosquitto", "nobody")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_free_ports(lab: Lab) -> Lab:
    """The same lab with its broker's mqtt and mqtts ports moved to free loopback ports."""
    ports = {"mqtt_port": free_port(), "mqtts_port": free_port()}
    return lab.model_copy(update={"settings": lab.settings.model_copy(update=ports)})


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


def _broker_account() -> pwd.struct_passwd | None:
    """Who the broker runs as: ourselves unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in BROKER_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError(f"running as root but none of the users {BROKER_USERS} exists")


class Broker:
    """A real Mosquitto for one generated lab folder; a context manager that starts and stops it.

    Args:
        lab_dir: the generated lab (labs/<lab>/): mosquitto/ and secrets/server.key are used.
        mqtt_port, mqtts_port: override the listener ports written in local.conf.
        timeout: seconds to wait for both listeners to answer.
    """

    def __init__(
        self,
        lab_dir: Path,
        *,
        mqtt_port: int | None = None,
        mqtts_port: int | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.lab_dir = Path(lab_dir)
        self.timeout = timeout
        ports = [int(p) for p, _ in LISTENER.findall((self.lab_dir / LOCAL_CONF).read_text())]
        if len(ports) != 2:
            raise ValueError(f"{self.lab_dir / LOCAL_CONF}: expected 2 listeners, found {ports}")
        self.mqtt_port = mqtt_port or ports[0]
        self.mqtts_port = mqtts_port or ports[1]
        self.host = "127.0.0.1"
        self.workdir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._account = _broker_account()

    @property
    def ca_cert(self) -> Path:
        """The lab CA certificate, for clients that verify the broker."""
        return self.lab_dir / "mosquitto" / "certs" / "ca.crt"

    def log(self) -> str:
        """The broker's log so far (its own log file, then anything it wrote to stderr)."""
        if self.workdir is None:
            return ""
        parts = [p.read_text(errors="replace") for p in (self.workdir / LOG,
                 self.workdir / "run" / "stderr.log") if p.exists()]
        return "\n".join(parts)

    def _stage(self) -> None:
        """Copy the lab's broker files into the working folder, with this broker's ports."""
        assert self.workdir is not None
        shutil.copytree(self.lab_dir / "mosquitto", self.workdir / "mosquitto", dirs_exist_ok=True)
        (self.workdir / "secrets").mkdir(mode=0o700, exist_ok=True)
        shutil.copy2(self.lab_dir / SERVER_KEY, self.workdir / SERVER_KEY)
        (self.workdir / LOG.parent).mkdir(parents=True, exist_ok=True)
        ports = iter((self.mqtt_port, self.mqtts_port))
        conf = self.workdir / LOCAL_CONF
        conf.write_text(LISTENER.sub(lambda m: f"listener {next(ports)}{m.group(2)}",
                                     conf.read_text()))
        if self._account is not None:
            for path in [self.workdir, *self.workdir.rglob("*")]:
                os.chown(path, self._account.pw_uid, self._account.pw_gid)

    def start(self) -> Broker:
        """Start the broker and wait until both listeners accept connections."""
        if self.process is not None:
            raise RuntimeError("broker already started")
        self.workdir = Path(tempfile.mkdtemp(prefix="dtn-broker-"))
        self._stage()
        account = self._account
        with (self.workdir / "run" / "stderr.log").open("wb") as stderr:
            self.process = subprocess.Popen(
                [MOSQUITTO, "-c", str(LOCAL_CONF)],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                user=account.pw_uid if account else None,
                group=account.pw_gid if account else None,
                extra_groups=[] if account else None,
            )
        deadline = time.monotonic() + self.timeout
        while not (_port_open(self.mqtt_port) and _port_open(self.mqtts_port)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = self.log()
                self.stop()
                raise RuntimeError(f"mosquitto did not come up on ports {self.mqtt_port}/"
                                   f"{self.mqtts_port}:\n{log}")
            time.sleep(0.02)
        return self

    def reload(self) -> None:
        """Copy the lab's regenerated files again and make the broker re-read them (SIGHUP).

        Mosquitto reloads the password file, the ACL and most limits on SIGHUP; listeners and
        certificates need a restart.
        """
        if self.process is None:
            raise RuntimeError("broker not started")
        self._stage()
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 5 s) and remove its working folder."""
        if self.process is not None:
            stop_process(self.process, grace=5)
            self.process = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def write_broker_files(lab: Lab, lab_dir: Path) -> LabSecrets:
    """Create the lab's secrets under lab_dir/secrets and write only the broker's files.

    Enough for a Broker; tests that need the whole lab should run the real generate instead.
    """
    secrets = ensure_secrets(lab, lab_dir / "secrets")
    for rel, text in mosquitto.render(lab, secrets).items():
        path = lab_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return secrets
