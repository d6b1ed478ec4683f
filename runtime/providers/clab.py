"""The containerlab provider: `containerlab deploy` of the generated topology."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from .base import LabStatus, NodeStatus, Provider, ProviderError

TOPOLOGY = "topology.clab.yml"
INSTALL_HINT = {
    "containerlab": "containerlab is not installed: see https://containerlab.dev/install/ "
                    "(it needs a Docker engine too)",
    "docker": "the docker CLI is not installed: install Docker Engine (docker-ce or docker.io)",
}


class ClabProvider(Provider):
    """Runs the lab as containers; needs a Docker engine and containerlab on this host."""

    name = "clab"

    def __init__(self, lab_dir: Path, shards: int | None = None, tls: bool = False) -> None:
        super().__init__(lab_dir)  # shards and tls are decided by the topology's node commands

    def _require(self) -> str:
        for tool in ("docker", "containerlab"):
            if shutil.which(tool) is None:
                raise ProviderError(INSTALL_HINT[tool])
        probe = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                               capture_output=True, text=True, timeout=30)
        if probe.returncode != 0:
            raise ProviderError("no Docker engine answers (`docker info` failed: "
                                f"{probe.stderr.strip()[:200]}); start dockerd or use "
                                "--provider local or netns")
        containerlab = shutil.which("containerlab")
        assert containerlab is not None
        return containerlab

    def _clab(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        containerlab = self._require()
        done = subprocess.run([containerlab, *args, "-t", TOPOLOGY], cwd=self.lab_dir,
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise ProviderError(f"containerlab {args[0]} failed: {done.stderr.strip()[-2000:]}")
        return done

    def up(self, timeout: float = 60.0) -> LabStatus:
        # containerlab 0.78+ updates a running lab in place with a second deploy.
        self._clab("deploy", timeout=max(timeout, 600))
        return self.status()

    def down(self) -> list[str]:
        names = [n.name for n in self.nodes() if n.alive]
        self._clab("destroy", "--cleanup", timeout=600)
        return names

    def nodes(self) -> list[NodeStatus]:
        try:
            done = self._clab("inspect", "--format", "json", timeout=60)
        except ProviderError:
            return []
        data = json.loads(done.stdout or "{}")
        containers = data.get("containers") or next(iter(data.values()), [])
        return [NodeStatus(name=c.get("name", "?"), pid=None,
                           alive=str(c.get("state", "")).lower() == "running",
                           state=str(c.get("state", "")))
                for c in containers if isinstance(c, dict)]
