"""The clab provider names what is missing on a host without containerlab or Docker.

This machine has no Docker engine, so the deploy itself cannot run here; the topology it would
deploy is checked against containerlab's schema in tests/generators/test_topology.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dtnlab.runtime.providers import ProviderError, provider_class


def test_up_without_containerlab_names_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither docker nor containerlab on PATH
    provider = provider_class("clab")(tmp_path)
    with pytest.raises(ProviderError, match="docker CLI is not installed"):
        provider.up()
    assert provider.nodes() == []


def test_up_without_a_docker_engine_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, script in (("docker", "echo 'Cannot connect to the Docker daemon' >&2; exit 1"),
                         ("containerlab", "exit 0")):
        (bin_dir / tool).write_text(f"#!/bin/sh\n{script}\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    with pytest.raises(ProviderError, match="no Docker engine answers"):
        provider_class("clab")(tmp_path).up()
