"""A containerlab node's file system, rebuilt from its binds and tmpfs, and what the runtime
resolves inside it through its own loaders (no Docker engine runs here to start the node)."""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from dtnlab.runtime.api.settings import Settings
from dtnlab.runtime.emulator.control import STATUS_DIR
from dtnlab.runtime.emulator.runner import EmulatorOptions
from dtnlab.runtime.emulator.spec import read_runtime
from dtnlab.runtime.labfiles import load_lab
from dtnlab.runtime.providers.clab_files import bind_parts, node_ids, read_only
from dtnlab.runtime.storage import database_url

LAB_MOUNT = "/lab"


@dataclass(frozen=True)
class Mount:
    """What is mounted at `target` in the container: a host path, or a tmpfs."""

    target: str
    host: Path | None  # None: a tmpfs
    writable: bool
    options: str = ""

    def owner(self) -> tuple[int, int]:
        """(uid, gid) that owns the mount's root, as the container sees it."""
        if self.host is None:
            opts = dict(o.partition("=")[::2] for o in self.options.split(","))
            return int(opts.get("uid", 0)), int(opts.get("gid", 0))
        info = self.host.stat()
        return info.st_uid, info.st_gid


def mounts(container: dict[str, Any]) -> list[Mount]:
    """The mounts of one docker_run_plan entry, shallow first (the order runc mounts them)."""
    found = []
    for bind in container["binds"]:
        host, target, options = bind_parts(bind)
        assert target is not None, bind
        found.append(Mount(target, Path(host), not read_only(options)))
    for target, options in container["tmpfs"].items():
        found.append(Mount(target, None, True, options))
    return sorted(found, key=lambda m: len(PurePosixPath(m.target).parts))


def mount_of(container: dict[str, Any], path: str) -> Mount:
    """The mount that serves `path` in the container (the deepest one containing it)."""
    inside = [m for m in mounts(container)
              if path == m.target or path.startswith(m.target.rstrip("/") + "/")]
    assert inside, f"{container['name']}: nothing is mounted at {path}"
    return inside[-1]


def host_file(container: dict[str, Any], path: str) -> Path:
    """The host file behind `path` in the container."""
    mount = mount_of(container, path)
    assert mount.host is not None, f"{container['name']}: {path} is on a tmpfs"
    return mount.host / PurePosixPath(path).relative_to(mount.target)


def build_view(container: dict[str, Any], root: Path) -> Path:
    """Copy what the node would see into `root` (later, deeper mounts hide earlier ones)."""
    for mount in mounts(container):
        target = root / mount.target.lstrip("/")
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        if mount.host is None:
            target.mkdir(parents=True)
        elif mount.host.is_dir():
            shutil.copytree(mount.host, target, symlinks=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(mount.host, target)
    return root


def node_user(node: dict[str, Any]) -> tuple[int, int]:
    ids = node_ids(node.get("user"))
    assert ids is not None, f"no numeric user: {node.get('user')!r}"
    return ids


def runtime_command(node: dict[str, Any]) -> tuple[str, str]:
    """(subcommand, --lab path) of a node running `python -m dtnlab.runtime ...`."""
    argv = shlex.split(node["cmd"])
    assert argv[:3] == ["python", "-m", "dtnlab.runtime"], node["cmd"]
    return argv[3], argv[argv.index("--lab") + 1]


def in_view(env: Mapping[str, str], root: Path) -> dict[str, str]:
    """The node's environment with its container paths moved into the view."""
    return {k: str(root / v.lstrip("/")) if v.startswith(LAB_MOUNT + "/") else v
            for k, v in env.items()}


@contextmanager
def node_environment(env: Mapping[str, str]) -> Iterator[None]:
    """This process's DTN_* environment replaced by the node's (pydantic-settings reads it)."""
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("DTN_")]:
            patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        yield


def resolve(subcommand: str, lab: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """What the runtime's own loaders make of this node: broker, database, API, paths.

    `lab` is the node's --lab folder in the view; `env` its environment (paths in the view).
    """
    if subcommand == "emulator":
        runtime = read_runtime(lab, env)
        return {"broker": (runtime.broker.host, runtime.broker.port),
                "status": lab / STATUS_DIR / f"{EmulatorOptions().process_name}.json"}
    files = load_lab(lab, env)
    found: dict[str, Any] = {"broker": (files.runtime.broker.host, files.runtime.broker.port),
                             "run_dir": files.run_dir}
    if subcommand == "engine":
        found["database"] = database_url(None, env)  # what the engine's open_store uses
    if subcommand == "api":
        with node_environment(env):
            settings = Settings()
            found["database"], found["audit"] = settings.database_urls()
            found["api_host"] = settings.api_host
    return found
