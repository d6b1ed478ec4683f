"""The clab provider: what it says without containerlab or Docker, and what it asks of them.

No Docker engine runs on this machine, so nothing is deployed here. The tests that drive a
deploy put STAND-INS for `docker` and `containerlab` on PATH: small scripts that record the
arguments they are given and answer `containerlab inspect --format json` in containerlab's own
shape (cmd/inspect.go, types.ContainerDetails: one key per lab, a list of containers). What
Docker would be asked for node by node is checked in tests/generators/test_topology.py and
tests/generators/test_clab_nodes.py.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from dtnlab.cli import main as dtnlab
from dtnlab.runtime.providers import ProviderError, provider_class
from tests.labs import generate_demo

INSPECT = {  # `containerlab inspect -t topology.clab.yml --format json` of a running lab
    "demo-plant": [
        {"lab_name": "demo-plant", "labPath": "topology.clab.yml",
         "absLabPath": "/labs/demo-plant/topology.clab.yml", "name": f"clab-demo-plant-{node}",
         "container_id": f"0123456789a{n}", "image": image, "kind": "linux", "state": state,
         "status": "Up 2 minutes" if state == "running" else "Exited (1) 1 minute ago",
         "ipv4_address": f"172.30.0.{250 - n}/24", "ipv6_address": "N/A", "owner": "root"}
        for n, (node, image, state) in enumerate([
            ("broker", "eclipse-mosquitto:2", "running"),
            ("database", "postgres:15", "running"),
            ("twin-engine", "dtnlab/node:0.1.0", "running"),
            ("api", "dtnlab/node:0.1.0", "exited"),
        ])
    ],
}


def stand_ins(bin_dir: Path, calls: Path) -> None:
    """`docker` and `containerlab` STAND-INS (no Docker engine runs here): they log argv."""
    bin_dir.mkdir()
    inspect = json.dumps(INSPECT)
    script = f"""#!{sys.executable}
# STAND-IN for the real tool: this machine has no Docker engine, so nothing is deployed.
import json, os, sys
with open({str(calls)!r}, "a") as log:
    log.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
if os.path.basename(sys.argv[0]) == "docker":
    print("27.5.1")  # docker info --format {{{{.ServerVersion}}}}
elif sys.argv[1:2] == ["inspect"]:
    print({inspect!r})
"""
    for tool in ("docker", "containerlab"):
        (bin_dir / tool).write_text(script)
        (bin_dir / tool).chmod(0o755)


def recorded(calls: Path) -> list[list[str]]:
    return [json.loads(line) for line in calls.read_text().splitlines()]


@pytest.fixture
def no_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with neither docker nor containerlab (python is called by its full path)."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


def _clab_lab(labs: Path) -> list[str]:
    """A demo lab recorded as started on clab; the CLI arguments that name it."""
    folder = generate_demo(labs / "demo-plant")
    (folder / "run").mkdir(exist_ok=True)
    (folder / "run" / "provider.json").write_text(json.dumps({"provider": "clab"}))
    return ["--lab", "demo-plant", "--labs-dir", str(labs)]


def test_up_without_containerlab_names_what_to_install(tmp_path: Path, no_tools: Path) -> None:
    provider = provider_class("clab")(tmp_path)
    with pytest.raises(ProviderError, match="docker CLI is not installed"):
        provider.up()
    with pytest.raises(ProviderError, match="docker CLI is not installed"):
        provider.nodes()


@pytest.mark.parametrize("command", ["down", "status"])
def test_down_and_status_without_the_tools_say_what_to_install(
        tmp_path: Path, no_tools: Path, command: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    args = _clab_lab(tmp_path / "labs")
    assert dtnlab([command, *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the docker CLI is not installed: install Docker Engine")
    assert "Traceback" not in err


def test_up_without_the_tools_leaves_nothing_running_and_says_so(
        tmp_path: Path, no_tools: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labs = tmp_path / "labs"
    generate_demo(labs / "demo-plant")
    args = ["--lab", "demo-plant", "--labs-dir", str(labs)]
    assert dtnlab(["up", "--provider", "clab", "--no-generate", *args]) == 1
    err = capsys.readouterr().err
    assert "docker CLI is not installed" in err
    assert "left running" not in err
    assert not (labs / "demo-plant" / "run" / "provider.json").exists()  # nothing was started


def test_up_without_a_docker_engine_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, script in (("docker", "echo 'Cannot connect to the Docker daemon' >&2; exit 1"),
                         ("containerlab", "exit 0")):
        (bin_dir / tool).write_text(f"#!/bin/sh\n{script}\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    with pytest.raises(ProviderError, match="no Docker engine answers"):
        provider_class("clab")(tmp_path).up()


def test_up_prepares_deploys_impairs_and_status_names_the_nodes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    calls = tmp_path / "calls.jsonl"
    stand_ins(tmp_path / "bin", calls)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    labs = tmp_path / "labs"
    folder = generate_demo(labs / "demo-plant")
    args = ["--lab", "demo-plant", "--labs-dir", str(labs)]

    assert dtnlab(["up", "--provider", "clab", "--no-generate", *args]) == 0
    clab = [argv[1:] for argv in recorded(calls) if argv[0] == "containerlab"]
    assert clab[0] == ["deploy", "-t", "topology.clab.yml"]
    # every impaired cable, on both ends, after the deploy: the WAN has delay 20ms and jitter
    # 2ms, the AGV's wireless link loses 1%
    netem = [shlex.join(argv) for argv in clab if argv[:3] == ["tools", "netem", "set"]]
    impaired = [lk for lk in json.loads((folder / "runtime.json").read_text())["topology"]
                ["links"] if lk["impairment"]]
    assert len(netem) == 2 * len(impaired) > 2
    assert clab.index(shlex.split(netem[0])) > 0
    for end in ("aar-core-01", "brn-core-01"):
        assert f"tools netem set -n clab-demo-plant-{end} -i eth24 --delay 20ms --jitter 2ms" \
            in netem
    assert "tools netem set -n clab-demo-plant-aar-agv-01 -i wlan0 --loss 1" in netem
    assert (folder / "secrets" / "server.key").stat().st_uid == 1883  # prepared before deploy

    assert dtnlab(["status", *args]) == 0  # running: the broker node is up
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert lines["broker"][1:3] == ["-", "yes"]
    assert lines["api"][1:4] == ["-", "no", "exited"]
    assert "clab-demo-plant-broker" not in out

    assert dtnlab(["down", *args]) == 0
    assert recorded(calls)[-1] == ["containerlab", "destroy", "--cleanup", "-t",
                                   "topology.clab.yml"]
    assert "stopped api" not in capsys.readouterr().out  # only what was running


def test_prepare_command_readies_a_lab_for_plain_containerlab_deploy(
        tmp_path: Path, no_tools: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labs = tmp_path / "labs"
    folder = generate_demo(labs / "demo-plant")
    args = ["--lab", "demo-plant", "--labs-dir", str(labs)]
    assert dtnlab(["clab", "prepare", *args]) == 0  # needs neither Docker nor containerlab
    assert "containerlab deploy -t topology.clab.yml" in capsys.readouterr().out
    assert (folder / "secrets" / "database" / "postgres.password").stat().st_uid == 999
    assert (folder / "run" / "clab").is_dir()
    assert dtnlab(["clab", "prepare", *args]) == 0
    assert "already belongs" in capsys.readouterr().out
