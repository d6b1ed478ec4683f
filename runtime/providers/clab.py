"""The containerlab provider: `containerlab deploy` of the generated topology, then its netem."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .base import LabStatus, NodeStatus, Provider, ProviderError, ProviderUnavailable
from .clab_files import (
    TOPOLOGY,
    ClabFileError,
    apply_ownership,
    netem_plan,
    ownership_plan,
    read_topology,
)

log = logging.getLogger(__name__)

INSTALL_HINT = {
    "containerlab": "containerlab is not installed: see https://containerlab.dev/install/ "
                    "(it needs a Docker engine too)",
    "docker": "the docker CLI is not installed: install Docker Engine (docker-ce or docker.io)",
}
DEPLOY_TIMEOUT_S = 600.0
TOOL_TIMEOUT_S = 60.0


def prepare(lab_dir: Path) -> list[str]:
    """Give each node's private files and writable folders to its user (clab_files.py).

    Returns:
        The paths changed, relative to the lab folder.

    Raises:
        ProviderError: a bound file is missing, shared between users, or needs root to change.
    """
    try:
        return apply_ownership(ownership_plan(read_topology(lab_dir), lab_dir), lab_dir)
    except ClabFileError as exc:
        raise ProviderError(str(exc)) from None


def containers(inspect_json: str) -> list[dict[str, Any]]:
    """The containers of `containerlab inspect --format json` output.

    containerlab prints `{"<lab>": [{"name": ..., "state": ...}, ...]}` (one key per lab, `{}`
    when nothing runs); releases before 0.65 printed `{"containers": [...]}`.
    """
    data = json.loads(inspect_json or "{}")
    if not isinstance(data, dict):
        return []
    return [c for entries in data.values() if isinstance(entries, list)
            for c in entries if isinstance(c, dict)]


class ClabProvider(Provider):
    """Runs the lab as containers; needs a Docker engine and containerlab on this host."""

    name = "clab"

    def __init__(self, lab_dir: Path, shards: int | None = None, tls: bool = False) -> None:
        super().__init__(lab_dir)  # shards and tls are decided by the topology's node commands

    def _require(self) -> str:
        """containerlab's path, once both tools are there and a Docker engine answers."""
        for tool in ("docker", "containerlab"):
            if shutil.which(tool) is None:
                raise ProviderUnavailable(INSTALL_HINT[tool])
        probe = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                               capture_output=True, text=True, timeout=30)
        if probe.returncode != 0:
            raise ProviderUnavailable("no Docker engine answers (`docker info` failed: "
                                      f"{probe.stderr.strip()[:200]}); start dockerd or use "
                                      "--provider local or netns")
        containerlab = shutil.which("containerlab")
        assert containerlab is not None
        return containerlab

    def _clab(self, *args: str, timeout: float = TOOL_TIMEOUT_S,
              topology: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [self._require(), *args] + (["-t", TOPOLOGY] if topology else [])
        done = subprocess.run(argv, cwd=self.lab_dir, capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise ProviderError(f"containerlab {' '.join(args[:3])} failed: "
                                f"{done.stderr.strip()[-2000:]}")
        return done

    def up(self, timeout: float = 60.0) -> LabStatus:
        self._require()  # before anything changes: a host without the tools is left as it was
        changed = prepare(self.lab_dir)
        if changed:
            log.info("clab: gave %d bound files and folders to their container users",
                     len(changed))
        # containerlab 0.78+ updates a running lab in place with a second deploy.
        self._clab("deploy", timeout=max(timeout, DEPLOY_TIMEOUT_S))
        self.apply_impairments()
        return self.status()

    def apply_impairments(self) -> int:
        """Cable delay, jitter and loss on both ends of each impaired link; returns how many."""
        try:
            settings = netem_plan(read_topology(self.lab_dir))
        except ClabFileError as exc:
            raise ProviderError(str(exc)) from None
        for setting in settings:
            self._clab(*setting.argv(), topology=False)
        return len(settings)

    def down(self) -> list[str]:
        names = [n.name for n in self.nodes() if n.alive]
        self._clab("destroy", "--cleanup", timeout=DEPLOY_TIMEOUT_S)
        return names

    def nodes(self) -> list[NodeStatus]:
        """The lab's containers under their node names (`clab-<lab>-broker` is `broker`)."""
        done = self._clab("inspect", "--format", "json")
        try:
            found = containers(done.stdout)
        except ValueError:
            raise ProviderError("containerlab inspect printed no JSON: "
                                f"{done.stdout.strip()[:200]}") from None
        nodes = []
        for entry in found:
            name = str(entry.get("name", "?"))
            prefix = f"clab-{entry.get('lab_name', '')}-"
            state = str(entry.get("state", ""))
            nodes.append(NodeStatus(name=name.removeprefix(prefix), pid=None,
                                    alive=state.lower() == "running", state=state))
        return sorted(nodes, key=lambda n: n.name)
