"""schemathesis fuzzes every operation of the OpenAPI document: no 5xx, no answer outside
the documented schema, status codes and content types."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.api import Api
from yunguan.app import create_app
from yunguan.core.config import Settings

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
SPEC = create_app(Settings(database_url="sqlite://"), run_workflows=False).openapi()
LABELS = [f"{method.upper()} {path}" for path, ops in SPEC["paths"].items() for method in ops]


@pytest.mark.parametrize("label", LABELS)
def test_api_fuzz(app, admin: Api, label: str) -> None:
    operation = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app).find_operation_by_label(
        label
    )
    headers = {"Authorization": f"Bearer {admin.token}"}

    @given(case=operation.as_strategy())
    @settings(
        max_examples=30,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    fuzz()
