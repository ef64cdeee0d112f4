"""Property-based API test: schemathesis 4 generates requests from the app's OpenAPI schema, valid and
invalid, and checks every response: no 5xx, status codes, headers and bodies as documented, bad input refused.

Requests go in-process through the ASGI app with a key holding every scope, so they reach the handlers;
schemathesis' ``ignored_auth`` check also replays them without the key and expects a refusal. (The
``schemathesis.pytest.from_fixture`` loader fails under pytest 9, so the strategies are driven here directly.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Err

from ripen.settings import Settings
from serving.auth import KeyFile
from serving.main import create_app

MAX_EXAMPLES = 15
EXPECTED_OPERATIONS = {
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "POST /v1/events",
    "GET /v1/content",
    "GET /v1/content/{content_id}",
    "PUT /v1/content/{content_id}",
    "POST /v1/content/{content_id}/deactivate",
}


@dataclass(frozen=True)
class LoadedApi:
    schema: schemathesis.BaseSchema
    headers: dict[str, str]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedApi]:
    """The app's own OpenAPI schema, bound to the app (embedded store under a temporary folder)."""
    app_settings = Settings(data_dir=tmp_path_factory.mktemp("schemathesis") / "data")
    key = KeyFile.in_dir(app_settings.data_dir).create(["engine", "sales", "admin"])[1]
    yield LoadedApi(
        schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings)), {"X-API-Key": key}
    )
    # schemathesis keeps each app's lifespan open for the whole process; close ours (and its store) now.
    from schemathesis.python.asgi import shutdown_lifespans

    shutdown_lifespans()


def _operations(api: LoadedApi) -> dict[str, schemathesis.APIOperation]:
    operations = {}
    for result in api.schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the schema itself is broken: fail loudly
        operation = result.ok()
        operations[f"{operation.method.upper()} {operation.path}"] = operation
    return operations


def test_schema_lists_every_route(api: LoadedApi) -> None:
    assert set(_operations(api)) == EXPECTED_OPERATIONS


WITHOUT_INPUT = {"GET /healthz", "GET /readyz", "GET /metrics"}
"""Operations with no parameters or body: there is no invalid request to generate for them."""

CASES = [(label, GenerationMode.POSITIVE) for label in sorted(EXPECTED_OPERATIONS)] + [
    (label, GenerationMode.NEGATIVE) for label in sorted(EXPECTED_OPERATIONS - WITHOUT_INPUT)
]


@pytest.mark.parametrize("label, mode", CASES, ids=[f"{m.value}-{label}" for label, m in CASES])
def test_responses_conform_and_never_5xx(api: LoadedApi, label: str, mode: GenerationMode) -> None:
    operation = _operations(api)[label]
    strategy = operation.as_strategy(generation_mode=mode)
    if label == "PUT /v1/content/{content_id}" and mode is GenerationMode.POSITIVE:
        # "body content_id equals the path's" is beyond JSON Schema; align them so valid blocks get stored.
        strategy = strategy.map(_align_path_with_body)

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=api.headers)

    check()


def _align_path_with_body(case: schemathesis.Case) -> schemathesis.Case:
    if isinstance(case.body, dict) and isinstance(case.body.get("content_id"), str) and case.path_parameters:
        case.path_parameters["content_id"] = case.body["content_id"]
    return case
