"""The compiled telemetry validator: every reason, and agreement with jsonschema on the schema."""

from __future__ import annotations

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dtnlab.runtime.engine import validator as v

SCHEMA = {
    "type": "object",
    "required": ["ts", "values"],
    "additionalProperties": False,
    "properties": {
        "ts": {"type": "number"},
        "seq": {"type": "integer", "minimum": 0},
        "values": {
            "type": "object",
            "additionalProperties": False,
            "required": ["temperature", "running", "mode", "count"],
            "properties": {
                "temperature": {"type": "number", "minimum": -50, "maximum": 150},
                "running": {"type": "boolean"},
                "mode": {"type": "string"},
                "count": {"type": "integer", "minimum": 0, "maximum": 10},
            },
        },
    },
}
GOOD = {"ts": 1.5, "seq": 3, "values": {"temperature": 20.5, "running": True, "mode": "auto",
                                        "count": 4}}
validate = v.compile_validator(SCHEMA, "test")


def with_values(**changes: object) -> dict[str, object]:
    values = dict(GOOD["values"])  # type: ignore[call-overload]
    values.update(changes)
    return {**GOOD, "values": values}


@pytest.mark.parametrize(("msg", "reason"), [
    pytest.param(GOOD, None, id="valid"),
    pytest.param({**GOOD, "ts": 2}, None, id="int-ts"),
    pytest.param({"ts": 1.0, "values": GOOD["values"]}, None, id="seq-optional"),
    pytest.param([GOOD], v.NOT_OBJECT, id="array"),
    pytest.param("x", v.NOT_OBJECT, id="string"),
    pytest.param({"values": GOOD["values"]}, v.MISSING_FIELD, id="no-ts"),
    pytest.param(with_values(temperature=None), v.WRONG_TYPE, id="null-value"),
    pytest.param({k: GOOD[k] for k in ("ts", "seq")}, v.MISSING_FIELD, id="no-values"),
    pytest.param({**GOOD, "ts": "1.5"}, v.WRONG_TYPE, id="string-ts"),
    pytest.param({**GOOD, "ts": True}, v.WRONG_TYPE, id="bool-ts"),
    pytest.param({**GOOD, "seq": 1.5}, v.WRONG_TYPE, id="fractional-seq"),
    pytest.param({**GOOD, "seq": -1}, v.OUT_OF_RANGE, id="negative-seq"),
    pytest.param({**GOOD, "values": []}, v.WRONG_TYPE, id="values-array"),
    pytest.param(with_values(temperature=151), v.OUT_OF_RANGE, id="above-max"),
    pytest.param(with_values(temperature=-50.1), v.OUT_OF_RANGE, id="below-min"),
    pytest.param(with_values(temperature=True), v.WRONG_TYPE, id="bool-for-number"),
    pytest.param(with_values(running=1), v.WRONG_TYPE, id="int-for-bool"),
    pytest.param(with_values(mode=3), v.WRONG_TYPE, id="int-for-string"),
    pytest.param(with_values(count=11), v.OUT_OF_RANGE, id="int-above-max"),
    pytest.param(with_values(count=2.0), None, id="integral-float-for-int"),
    pytest.param(with_values(extra=1), v.UNKNOWN_FIELD, id="unknown-metric"),
    pytest.param({**GOOD, "extra": 1}, v.UNKNOWN_FIELD, id="unknown-top-field"),
])
def test_reasons(msg: object, reason: str | None) -> None:
    assert validate(msg) == reason


def test_missing_metric() -> None:
    values = dict(GOOD["values"])  # type: ignore[call-overload]
    del values["running"]
    assert validate({**GOOD, "values": values}) == v.MISSING_FIELD


def test_names_cannot_inject_code() -> None:
    schema = {"type": "object", "properties": {"a'); import os; ('": {"type": "number"}}}
    check = v.compile_validator(schema, "evil")
    assert check({"a'); import os; ('": 1}) is None
    assert check({"a'); import os; ('": "x"}) == v.WRONG_TYPE


def test_unsupported_schema_is_refused() -> None:
    with pytest.raises(v.SchemaError, match="unsupported type"):
        v.compile_validator({"type": "object", "properties": {"x": {"type": "null"}}})
    with pytest.raises(v.SchemaError, match="not finite"):
        v.compile_validator({"type": "object",
                             "properties": {"x": {"type": "number", "maximum": float("inf")}}})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-100, 100) | st.floats(-100, 200, allow_nan=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8)
near_messages = st.fixed_dictionaries(
    {"ts": st.one_of(st.floats(0, 2e9), st.integers(0, 2**31), json_values)},
    optional={"seq": st.one_of(st.integers(-5, 50), json_values),
              "values": st.fixed_dictionaries(
                  {}, optional={"temperature": st.one_of(st.floats(-60, 160), json_values),
                                "running": st.one_of(st.booleans(), json_values),
                                "mode": st.one_of(st.text(max_size=4), json_values),
                                "count": st.one_of(st.integers(-2, 12), json_values)}),
              "extra": json_values})


@settings(max_examples=400, deadline=None)
@given(msg=near_messages | json_values)
def test_agrees_with_jsonschema(msg: object) -> None:
    """Valid for the compiled validator exactly when valid for the reference implementation
    (bools are never numbers here, as in JSON Schema)."""
    expected = jsonschema.Draft202012Validator(SCHEMA).is_valid(msg)
    assert (validate(msg) is None) == expected
