"""The demo topology's nodes as containerlab would start them, checked through the runtime.

No Docker engine runs here, so each node's file system is rebuilt from its binds and tmpfs
(tests/generators/clab_view.py) and the runtime's own loaders are fed the node's environment:
they must find the broker node, the database node with the password the database node was given,
a run folder the node's user can write, and every secret the node reads owned by that user.
The lab folder is prepared as `dtnlab up --provider clab` does, which needs root (chown).
"""

from __future__ import annotations

import copy
import os
import stat
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from dtnlab.generators.clab_check import docker_run_plan
from dtnlab.generators.clab_services import API, BROKER, DATABASE, long_name
from dtnlab.generators.platforms import NODE_IMAGE
from dtnlab.generators.topology import TOPOLOGY_FILE
from dtnlab.runtime.emulator.spec import read_password
from dtnlab.runtime.providers.clab import prepare
from dtnlab.runtime.providers.clab_files import ClabFileError, bind_parts, ownership_plan
from tests.generators.clab_view import (
    build_view,
    host_file,
    in_view,
    mount_of,
    node_user,
    resolve,
    runtime_command,
)
from tests.labs import generate_demo


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any],
                                                            list[dict[str, Any]]]:
    if os.geteuid() != 0:
        pytest.fail("giving bound files to container users needs root (chown), as "
                    "containerlab itself does: run this test as root", pytrace=False)
    lab_dir = generate_demo(tmp_path_factory.mktemp("clab") / "demo-plant")
    assert prepare(lab_dir)  # something changed: the generated secrets were root's
    doc = yaml.safe_load((lab_dir / TOPOLOGY_FILE).read_text())
    return lab_dir, doc, docker_run_plan(doc, lab_dir)


def _container(plan: list[dict[str, Any]], node: str) -> dict[str, Any]:
    return next(c for c in plan if c["hostname"] == node)


def test_runtime_nodes_find_the_broker_the_database_and_a_writable_run_folder(
        lab: tuple[Path, dict[str, Any], list[dict[str, Any]]],
        tmp_path: Path) -> None:
    lab_dir, doc, plan = lab
    nodes = doc["topology"]["nodes"]
    runtime = yaml.safe_load((lab_dir / "runtime.json").read_text())
    broker = (long_name(doc["name"], BROKER), runtime["broker"]["port"])
    db_password = host_file(_container(plan, DATABASE), "/run/secrets/postgres.password")
    seen: dict[str, int] = {}
    for container in plan:
        node = nodes[container["hostname"]]
        if node["image"] != NODE_IMAGE or "cmd" not in node or "dtnlab" not in node["cmd"]:
            continue
        subcommand, lab_path = runtime_command(node)
        seen[subcommand] = seen.get(subcommand, 0) + 1
        root = build_view(container, tmp_path / container["hostname"])
        view_lab = root / lab_path.lstrip("/")
        found = resolve(subcommand, view_lab, in_view(node["env"], root))
        where = container["hostname"]
        assert found["broker"] == broker, where
        writes = found["status"] if subcommand == "emulator" else found["run_dir"]
        mount = mount_of(container, "/" + writes.relative_to(root).as_posix())
        assert mount.writable, f"{where}: {writes} is read-only"
        assert mount.owner() == node_user(node), f"{where}: {mount} is not its user's"
        if subcommand == "emulator":
            device = where.removesuffix("-twin")
            assert read_password(view_lab, device)  # its own password is there, and readable
            continue
        database = urlsplit(found["database"])
        assert (database.hostname, database.port, database.username, database.password) == (
            long_name(doc["name"], DATABASE), 5432, "dtn", db_password.read_text())
        if subcommand == "api":
            assert found["api_host"] == "0.0.0.0"
            assert found["audit"] == found["database"]
            assert f"{runtime['api']['port']}:{runtime['api']['port']}" in container["ports"]
    assert seen == {"emulator": len(runtime["twins"]), "engine": 1, "api": 1}
    assert nodes[API]["user"] == "1000:1000"


def test_every_private_file_belongs_to_the_one_user_reading_it(
        lab: tuple[Path, dict[str, Any], list[dict[str, Any]]]) -> None:
    lab_dir, doc, plan = lab
    owners: dict[str, tuple[int, int]] = {}
    for container in plan:
        node = doc["topology"]["nodes"][container["hostname"]]
        for bind in container["binds"]:
            host = Path(bind_parts(bind)[0])
            info = host.stat()
            if host.is_dir() or info.st_mode & stat.S_IROTH:
                continue
            owners[host.relative_to(lab_dir).as_posix()] = (info.st_uid, info.st_gid)
            assert (info.st_uid, info.st_gid) == node_user(node), bind
            assert stat.S_IMODE(info.st_mode) == 0o600, bind
    assert owners["secrets/server.key"] == (1883, 1883)  # mosquitto, after dropping root
    assert owners["secrets/database/postgres.password"] == (999, 999)  # postgres:15
    assert owners["secrets/postgres.password"] == (1000, 1000)  # the twin engine and the API
    assert owners["secrets/devices/aar-l1-c1-plc-01.password"] == (1000, 1000)
    # what no container reads stays the generator's
    assert (lab_dir / "secrets" / "ca.key").stat().st_uid == os.geteuid()
    run = (lab_dir / "run" / "clab").stat()
    assert (run.st_uid, stat.S_IMODE(run.st_mode)) == (1000, 0o700)
    assert prepare(lab_dir) == []  # a second run changes nothing


def test_a_private_file_shared_by_two_users_is_refused(
        lab: tuple[Path, dict[str, Any], list[dict[str, Any]]]) -> None:
    lab_dir, doc, _ = lab
    shared = copy.deepcopy(doc)
    shared["topology"]["nodes"][BROKER]["binds"].append(
        "./secrets/postgres.password:/run/secrets/db:ro")
    with pytest.raises(ClabFileError, match=r"secrets/postgres.password is read by nodes of "
                                            r"different users \(api, twin-engine as 1000:1000; "
                                            r"broker as 1883:1883\)"):
        ownership_plan(shared, lab_dir)
    shared["topology"]["nodes"][BROKER]["binds"][-1] = "./secrets/nothing:/x:ro"
    with pytest.raises(ClabFileError, match="bound file secrets/nothing .bound into broker. "
                                            "does not exist"):
        ownership_plan(shared, lab_dir)
