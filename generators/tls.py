"""The lab broker's TLS material: a lab CA and a server certificate, created once and kept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dtnlab.inventory.model import Lab


@dataclass(frozen=True)
class TlsMaterial:
    ca_cert: str  # PEM, public
    server_cert: str  # PEM, public
    server_key_path: Path  # the key stays in the secrets folder


def ensure_tls(lab: Lab, folder: Path) -> TlsMaterial:
    """Placeholder until the TLS generator lands: filled in by generators/tls.py's owner."""
    raise NotImplementedError
