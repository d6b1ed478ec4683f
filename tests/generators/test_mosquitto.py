"""Mosquitto generator units: passwd format, ACL content, configs, determinism, TLS and secrets."""

from __future__ import annotations

import base64
import datetime as dt
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dtnlab.generators import mosquitto, tls
from dtnlab.generators.passwd import (
    password_hash,
    render_passwd,
    salt_for,
)
from dtnlab.generators.secrets import API_USER, RUNTIME_USER, ensure_secrets
from dtnlab.inventory.model import Lab, device_topics
from dtnlab.inventory.source import FileSource
from tests.conftest import DEMO_INVENTORY

PASSWD_LINE = re.compile(r"^([^:]+):\$7\$101\$([A-Za-z0-9+/]{16})\$([A-Za-z0-9+/]{86}==)$")


@pytest.fixture(scope="module")
def lab() -> Lab:
    return FileSource(DEMO_INVENTORY).load()


@pytest.fixture
def rendered(lab: Lab, tmp_path: Path) -> dict[str, str]:
    return mosquitto.render(lab, ensure_secrets(lab, tmp_path / "secrets"))


def acl_blocks(acl: str) -> dict[str, list[str]]:
    """user -> its `topic` lines; topic lines before any user are kept under ''."""
    blocks: dict[str, list[str]] = {"": []}
    current = ""
    for line in acl.splitlines():
        if line.startswith("user "):
            current = line.split(" ", 1)[1]
            assert current not in blocks, f"user {current} appears twice"
            blocks[current] = []
        elif line and not line.startswith("#"):
            blocks[current].append(line)
    return blocks


# -- passwd ------------------------------------------------------------------------------------

@pytest.mark.mosquitto
def test_hash_equals_what_mosquitto_passwd_writes(tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    passwd = tmp_path / "passwd"
    passwd.touch()
    for user, password in [("alice", "s3cret"), ("bob", "pässwörd with spaces")]:
        subprocess.run([tool, "-b", str(passwd), user, password], check=True, timeout=10)
    for line, password in zip(passwd.read_text().splitlines(), ["s3cret", "pässwörd with spaces"],
                              strict=True):
        match = PASSWD_LINE.match(line)
        assert match, line
        salt = base64.b64decode(match.group(2))
        assert f"{match.group(1)}:{password_hash(password, salt)}" == line


def test_passwd_lists_every_user_sorted_in_7_format(rendered: dict[str, str], lab: Lab) -> None:
    lines = rendered["mosquitto/passwd"].splitlines()
    assert all(PASSWD_LINE.match(line) for line in lines), lines[:3]
    users = [line.split(":", 1)[0] for line in lines]
    assert users == sorted([d.id for d in lab.twins] + [RUNTIME_USER, API_USER])
    salts = [line.split("$")[3] for line in lines]
    assert len(set(salts)) == len(salts)


def test_passwd_is_reproducible_and_keyed() -> None:
    passwords = {"b": "same", "a": "same", **{f"d{i:04}": f"pw{i}" for i in range(50)}}
    first = render_passwd(passwords, "key-1")
    assert render_passwd(dict(reversed(passwords.items())), "key-1") == first
    assert render_passwd(passwords, "key-2") != first
    assert salt_for("a", "same", "k") != salt_for("b", "same", "k")
    assert salt_for("a", "same", "k") != salt_for("a", "other", "k")


@pytest.mark.parametrize("user", ["a:b", "a\nb", ""], ids=["colon", "newline", "empty"])
def test_passwd_refuses_user_names_that_break_the_file(user: str) -> None:
    with pytest.raises(ValueError, match="cannot go into"):
        render_passwd({user: "pw"}, "k")


# -- ACL ---------------------------------------------------------------------------------------

def test_each_device_writes_its_outputs_and_reads_its_commands(
    rendered: dict[str, str], lab: Lab
) -> None:
    blocks = acl_blocks(rendered["mosquitto/acl"])
    assert blocks.pop("") == []  # nothing for anonymous or for everyone
    assert "pattern" not in rendered["mosquitto/acl"]
    assert sorted(blocks) == sorted([d.id for d in lab.twins] + [RUNTIME_USER, API_USER])
    for device in lab.twins:
        topics = device_topics(lab, device)
        assert sorted(blocks[device.id]) == sorted([
            f"topic write {topics['telemetry']}",
            f"topic write {topics['status']}",
            f"topic write {topics['alert']}",
            f"topic read {topics['command']}",
        ])
        assert not any(c in line for line in blocks[device.id] for c in "+#")


def test_service_users_rules(rendered: dict[str, str], lab: Lab) -> None:
    blocks = acl_blocks(rendered["mosquitto/acl"])
    ent = lab.settings.enterprise
    every = f"{ent}/+/+/+/+/+"
    aggregates = {f"topic readwrite {lv.path}/_aggregate" for lv in lab.levels
                  if lv.level in ("site", "area", "line")}
    assert len(aggregates) > 10
    assert set(blocks[RUNTIME_USER]) == {
        f"topic readwrite {ent}/_twin/#",
        f"topic read {every}/telemetry",
        f"topic read {every}/status",
        f"topic readwrite {every}/alert",
        f"topic write {every}/command",
    } | aggregates
    assert blocks[API_USER] == [f"topic read {ent}/#", f"topic write {every}/command",
                                f"topic write {ent}/_twin/+/control"]
    assert not any("/_cell/_aggregate" in line for line in blocks[RUNTIME_USER])


def test_device_named_like_a_service_user_is_refused(lab: Lab) -> None:
    clash = lab.twins[0].model_copy(update={"id": RUNTIME_USER})
    with pytest.raises(ValueError, match="collides"):
        mosquitto.acl_rules(lab.model_copy(update={"devices": (clash, *lab.twins[1:])}))


# -- configs -----------------------------------------------------------------------------------

def conf_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_container_and_local_conf_are_the_same_broker(rendered: dict[str, str], lab: Lab) -> None:
    container = conf_lines(rendered["mosquitto/mosquitto.conf"])
    local = conf_lines(rendered["mosquitto/local.conf"])
    path_keys = {"password_file", "acl_file", "cafile", "certfile", "keyfile",
                 "persistence_location", "log_dest", "listener"}
    assert [ln for ln in container if ln.split()[0] not in path_keys] == [
        ln for ln in local if ln.split()[0] not in path_keys]
    port, tls_port = lab.settings.mqtt_port, lab.settings.mqtts_port
    assert f"listener {port}" in container
    assert f"listener {tls_port}" in container
    assert f"listener {port} 127.0.0.1" in local
    assert f"listener {tls_port} 127.0.0.1" in local
    for line in ("allow_anonymous false", "per_listener_settings false", "persistence true",
                 "tls_version tlsv1.2", "set_tcp_nodelay true"):
        assert line in container
    assert "persistence_location /mosquitto/data/" in container
    assert "keyfile /mosquitto/certs/server.key" in container


def test_local_conf_has_only_relative_paths(rendered: dict[str, str]) -> None:
    local = rendered["mosquitto/local.conf"]
    assert not re.search(r"\s/", local.replace("# ", "")), "absolute path in local.conf"
    assert "keyfile secrets/server.key" in local
    assert "persistence_location run/mosquitto/" in local


def test_queue_limit_grows_with_the_lab(lab: Lab) -> None:
    small = mosquitto.broker_limits(lab)["max_queued_messages"]
    big_lab = lab.model_copy(update={"devices": lab.twins * 300})  # ids repeat; only counted
    big = mosquitto.broker_limits(big_lab)["max_queued_messages"]
    assert small == mosquitto.BURST_MESSAGES
    assert big == 10 * len(lab.twins) * 300 > small


def test_render_is_byte_identical_across_runs(lab: Lab, tmp_path: Path) -> None:
    first = mosquitto.render(lab, ensure_secrets(lab, tmp_path / "secrets"))
    again = mosquitto.render(lab, ensure_secrets(lab, tmp_path / "secrets"))
    assert first == again
    assert sorted(first) == sorted([
        "mosquitto/mosquitto.conf", "mosquitto/local.conf", "mosquitto/acl", "mosquitto/passwd",
        "mosquitto/certs/ca.crt", "mosquitto/certs/server.crt"])
    assert "PRIVATE KEY" not in "".join(first.values())


# -- TLS and secrets ---------------------------------------------------------------------------

def test_keys_are_private_and_certs_public(lab: Lab, tmp_path: Path) -> None:
    ensure_secrets(lab, tmp_path)
    for name, mode in [("ca.key", 0o600), ("server.key", 0o600), ("ca.crt", 0o644),
                       ("server.crt", 0o644), ("mqtt-passwords.json", 0o600)]:
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_tls_material_is_kept_across_runs(lab: Lab, tmp_path: Path) -> None:
    first = tls.ensure_tls(lab, tmp_path)
    files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    assert tls.ensure_tls(lab, tmp_path) == first
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()} == files


def test_server_cert_names_the_broker_and_chains_to_the_ca(lab: Lab, tmp_path: Path) -> None:
    material = tls.ensure_tls(lab, tmp_path)
    ca = x509.load_pem_x509_certificate(material.ca_cert.encode())
    server = x509.load_pem_x509_certificate(material.server_cert.encode())
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "broker"} <= set(sans.get_values_for_type(x509.DNSName))
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    key = serialization.load_pem_private_key(material.server_key_path.read_bytes(), None)
    assert key.public_key() == server.public_key()


def test_missing_server_cert_is_reissued_by_the_same_ca(lab: Lab, tmp_path: Path) -> None:
    first = tls.ensure_tls(lab, tmp_path)
    (tmp_path / "server.crt").unlink()
    second = tls.ensure_tls(lab, tmp_path)
    assert second.ca_cert == first.ca_cert
    assert second.server_cert != first.server_cert
    ca = x509.load_pem_x509_certificate(second.ca_cert.encode())
    x509.load_pem_x509_certificate(second.server_cert.encode()).verify_directly_issued_by(ca)


def test_expired_server_cert_is_reissued(lab: Lab, tmp_path: Path) -> None:
    first = tls.ensure_tls(lab, tmp_path)
    ca_key = serialization.load_pem_private_key((tmp_path / "ca.key").read_bytes(), None)
    server_key = serialization.load_pem_private_key((tmp_path / "server.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate(first.ca_cert.encode())
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=1000)
    expired = tls._issue_server(lab, server_key, ca, ca_key, long_ago)  # type: ignore[arg-type]
    (tmp_path / "server.crt").write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    renewed = x509.load_pem_x509_certificate(tls.ensure_tls(lab, tmp_path).server_cert.encode())
    assert renewed.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=700)
    assert tls.ensure_tls(lab, tmp_path).ca_cert == first.ca_cert
