"""Schemathesis against a real server's OpenAPI document: no generated request may get a 5xx or an
answer the document does not describe (status, media type, headers, body schema).

The operations are driven through hypothesis directly: schemathesis' pytest loader for a fixture's
URL (``schemathesis.pytest.from_fixture``) does not run on pytest 9.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

#: Answers must be documented and match their schema. Valid input need not succeed and a lenient
#: reading (numeric strings) is allowed, so data acceptance and rejection are not checked.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


#: The same, where a documented 503 is the expected answer (a service with nothing to serve yet).
CHECKS_WITHOUT_SERVER_ERRORS = [check for check in CHECKS if check is not not_a_server_error]


def contract_violations(document_url: str, examples: int, checks: list = CHECKS) -> list[str]:
    """Fuzz every operation at ``document_url`` with ``examples`` valid and as many invalid requests.

    The answer lists each operation and mode that broke the contract, with schemathesis' report; an
    operation without parameters or body has no invalid request to make.
    """
    schema = schemathesis.openapi.from_url(document_url)
    violations = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def call(case: schemathesis.Case) -> None:
                case.call_and_validate(checks=checks)

            try:
                call()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, f"no valid request for {operation.path}"
            except Exception as failure:  # schemathesis' failure groups, or an unreachable operation
                violations.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {failure}")
    return violations
