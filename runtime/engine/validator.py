"""Telemetry validators compiled from a twin's JSON Schema into plain Python, one per device."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

# Why a message was rejected; also the keys of the engine's failure counters.
BAD_JSON = "bad_json"
NOT_OBJECT = "not_object"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
OUT_OF_RANGE = "out_of_range"
UNKNOWN_FIELD = "unknown_field"
OVERSIZED = "oversized"
UNKNOWN_DEVICE = "unknown_device"
REASONS = (BAD_JSON, NOT_OBJECT, MISSING_FIELD, WRONG_TYPE, OUT_OF_RANGE, UNKNOWN_FIELD,
           OVERSIZED, UNKNOWN_DEVICE)

Validator = Callable[[Any], "str | None"]

_TYPE_TESTS = {
    # bool is a subclass of int: exact type tests keep True out of numbers.
    "number": "(_t is float or _t is int)",
    "integer": "(_t is int or (_t is float and {v}.is_integer()))",
    "boolean": "_t is bool",
    "string": "_t is str",
}


class SchemaError(ValueError):
    """The schema uses something the compiler does not support."""


def _literal(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaError(f"{where}: bound {value!r} is not a number")
    if not math.isfinite(value):
        raise SchemaError(f"{where}: bound {value!r} is not finite")
    return repr(float(value))


def _value_checks(var: str, schema: dict[str, Any], where: str, indent: str) -> list[str]:
    kind = schema.get("type")
    if kind not in _TYPE_TESTS:
        raise SchemaError(f"{where}: unsupported type {kind!r}")
    lines = [f"{indent}_t = type({var})",
             f"{indent}if not {_TYPE_TESTS[kind].format(v=var)}: return {WRONG_TYPE!r}"]
    if kind in ("number", "integer"):
        if "minimum" in schema:
            lo = _literal(schema["minimum"], where)
            lines.append(f"{indent}if {var} < {lo}: return {OUT_OF_RANGE!r}")
        if "maximum" in schema:
            hi = _literal(schema["maximum"], where)
            lines.append(f"{indent}if {var} > {hi}: return {OUT_OF_RANGE!r}")
    return lines


def _object_checks(var: str, schema: dict[str, Any], where: str, indent: str,
                   depth: int) -> list[str]:
    props: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    reason = NOT_OBJECT if depth == 0 else WRONG_TYPE
    lines = [f"{indent}if type({var}) is not dict: return {reason!r}"]
    present = f"_n{depth}"
    lines.append(f"{indent}{present} = 0")
    for i, (name, sub) in enumerate(props.items()):
        child = f"_v{depth}_{i}"
        lines.append(f"{indent}{child} = {var}.get({name!r}, _MISSING)")
        lines.append(f"{indent}if {child} is _MISSING:")
        lines.append(f"{indent}    " + (f"return {MISSING_FIELD!r}" if name in required
                                        else "pass"))
        lines.append(f"{indent}else:")
        lines.append(f"{indent}    {present} += 1")
        inner = indent + "    "
        if sub.get("type") == "object":
            lines += _object_checks(child, sub, f"{where}.{name}", inner, depth + 1)
        else:
            lines += _value_checks(child, sub, f"{where}.{name}", inner)
    missing_required = required - set(props)
    for name in sorted(missing_required):
        lines.append(f"{indent}if {name!r} not in {var}: return {MISSING_FIELD!r}")
    if schema.get("additionalProperties") is False:
        lines.append(f"{indent}if len({var}) != {present}: return {UNKNOWN_FIELD!r}")
    return lines


def compile_validator(schema: dict[str, Any], name: str = "twin") -> Validator:
    """Compile a telemetry JSON Schema (the subset the generator emits) into a function.

    The function takes a decoded message and returns None when it is valid, else the reason.
    Names and bounds are embedded with repr(), so no schema text can become code.

    Raises:
        SchemaError: on a keyword or type outside the supported subset.
    """
    if schema.get("type") != "object":
        raise SchemaError(f"{name}: the telemetry schema must describe an object")
    body = _object_checks("msg", schema, name, "    ", 0)
    source = "def validate(msg):\n" + "\n".join(body) + "\n    return None\n"
    namespace: dict[str, Any] = {"_MISSING": object()}
    exec(compile(source, f"<validator {name}>", "exec"), namespace)  # noqa: S102
    validate: Validator = namespace["validate"]
    validate.source = source  # type: ignore[attr-defined]
    return validate
