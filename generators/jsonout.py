"""Deterministic JSON text for generated files."""

from __future__ import annotations

import orjson

_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


def dump(data: object) -> str:
    """Sorted keys, two-space indent, trailing newline: the same data gives the same bytes."""
    return orjson.dumps(data, option=_OPTIONS).decode()
