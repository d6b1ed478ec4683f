"""Mosquitto config, ACL and passwd (placeholder until its owner lands it)."""

from __future__ import annotations

from dtnlab.inventory.model import Lab

from .secrets import LabSecrets


def render(lab: Lab, secrets: LabSecrets) -> dict[str, str]:
    return {}
