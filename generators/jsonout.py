"""Deterministic JSON text for generated files."""

from __future__ import annotations

import json


def dump(data: object) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
