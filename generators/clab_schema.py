"""containerlab's topology JSON schema: check a whole topology, or one node's settings."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

SCHEMA_ENV = "DTN_CLAB_SCHEMA"
# containerlab's own topology schema (BSD-3-Clause), shipped so topologies are checked offline.
DEFAULT_SCHEMA = Path(__file__).with_name("clab.schema.json")
MAX_MESSAGE = 300  # a schema error may quote a whole node; keep a line readable
# Branching keywords: their error carries every branch's errors, and one branch is meant.
_BRANCHING = (jsonschema_rs.ValidationErrorKind.OneOfNotValid,
              jsonschema_rs.ValidationErrorKind.AnyOf)


@dataclass(frozen=True, order=True)
class SchemaError:
    """One schema violation: where in the document (JSON path parts) and what."""

    path: tuple[str, ...]
    message: str

    @property
    def where(self) -> str:
        return "/".join(self.path) or "<root>"

    def __str__(self) -> str:
        return f"schema: {self.where}: {self.message}"


def schema_path() -> Path:
    """containerlab's schema: $DTN_CLAB_SCHEMA, else the copy shipped beside this module."""
    override = os.environ.get(SCHEMA_ENV)
    return Path(override) if override else DEFAULT_SCHEMA


@cache
def _schema(path: Path) -> dict[str, Any]:
    try:
        schema: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"containerlab schema not found at {path}; set {SCHEMA_ENV} "
                                "to the path of clab.schema.json") from None
    return schema


@cache
def _validator(path: Path, definition: str | None) -> Any:
    schema = _schema(path)
    if definition is not None:
        # One definition of the schema (e.g. a node), with the definitions it refers to.
        schema = {"$schema": schema.get("$schema"), "definitions": schema["definitions"],
                  "allOf": [{"$ref": f"#/definitions/{definition}"}]}
    return jsonschema_rs.validator_for(schema)


def _depth(errors: list[Any]) -> tuple[int, bool]:
    """How well a branch matched: its deepest error, and whether that is more than a type."""
    deepest = max(errors, key=lambda e: len(e.instance_path))
    weak = isinstance(deepest.kind, jsonschema_rs.ValidationErrorKind.Type)
    return len(deepest.instance_path), not weak


def _leaves(error: Any) -> list[Any]:
    """The errors that say what is wrong: in a oneOf/anyOf, those of the branch that was meant.

    The branch meant is the one that got deepest into the instance (a node is `oneOf: [null,
    node-config]`: a node with a bad kind fails `null` at the node and node-config at `kind`).
    """
    if isinstance(error.kind, _BRANCHING):
        branches = [b for b in error.kind.context if b]
        if branches:
            best = max(branches, key=_depth)
            return [leaf for sub in best for leaf in _leaves(sub)]
    return [error]


def _errors(validator: Any, instance: object) -> list[SchemaError]:
    if validator.is_valid(instance):
        return []  # the common case: one pass in compiled code
    found = set()
    for top in validator.iter_errors(instance):
        for err in _leaves(top):
            message = err.message
            if len(message) > MAX_MESSAGE:
                message = message[:MAX_MESSAGE] + "..."
            found.add(SchemaError(tuple(str(p) for p in err.instance_path), message))
    return sorted(found)


def schema_errors(doc: dict[str, Any]) -> list[SchemaError]:
    """Errors of a topology document against containerlab's JSON schema, sorted by path."""
    return _errors(_validator(schema_path(), None), doc)


def node_errors(node: dict[str, Any]) -> list[SchemaError]:
    """Errors of one node's settings against the schema's node definition (paths from the node)."""
    return _errors(_validator(schema_path(), "node-config"), node)
