"""Schemathesis against the OpenAPI schema: no server error, no response outside the schema.

A bounded run: every operation, valid and invalid data, MAX_EXAMPLES each, as the admin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.runtime.api.labrig import SPIKED

pytestmark = pytest.mark.mosquitto

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance, negative_data_rejection]
MAX_EXAMPLES = 30  # per operation and mode: 15 operations x 2 modes, ~20 s in all


def test_api_matches_its_schema(client: TestClient,
                                auth: Callable[[str], dict[str, str]]) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    headers = auth("admin")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    try:
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
                def run(case: Any) -> None:
                    case.call_and_validate(headers=headers, checks=CHECKS)

                try:
                    run()
                except Unsatisfiable:
                    assert mode == GenerationMode.NEGATIVE  # nothing to make invalid
                except Exception as exc:  # collect all, report all
                    failures.append(f"{operation.label} [{mode}]: {exc}")
    finally:  # the schema's example twin may be left in maintenance
        client.post(f"/twins/{SPIKED}/maintenance", json={"action": "leave"},
                    headers=auth("operator"))
    assert not failures, "\n\n".join(failures)
