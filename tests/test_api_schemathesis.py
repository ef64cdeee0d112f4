"""Property-based API test: schemathesis 4 generates requests from the app's OpenAPI schema, valid and
invalid, and checks every response: no 5xx, status codes, headers and bodies as documented, bad input refused.

Requests go in-process through the ASGI app with a key holding every scope, so they reach the handlers;
schemathesis' ``ignored_auth`` check also replays them without the key and expects a refusal. (The
``schemathesis.pytest.from_fixture`` loader fails under pytest 9, so the strategies are driven here directly.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.parameters import ParameterLocation
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
    "POST /v1/recommend",
    "POST /v1/recommend/batch",
    "POST /v1/recommend/batch/jobs",
    "GET /v1/recommend/batch/jobs/{job_id}",
    "GET /v1/recommend/batch/jobs/{job_id}/result",
    "POST /v1/rewards/{event_id}",
    "GET /v1/contacts/{contact_id}/insight",
    "DELETE /v1/contacts/{contact_id}",
    "GET /sales/contacts/{contact_id}",
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
    if mode is GenerationMode.NEGATIVE:
        # The only header parameter is the API key, and every call sends a valid one (auth refusals are
        # checked by ``ignored_auth`` and test_api_auth): a case whose header is its invalid part is valid.
        strategy = strategy.filter(_header_is_valid)
    if label == "PUT /v1/content/{content_id}" and mode is GenerationMode.POSITIVE:
        strategy = strategy.map(_consistent_block)

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=api.headers, excluded_checks=excluded)

    # a segment is a condition in a grammar JSON Schema cannot state: a schema-valid string may still be a
    # syntax error, refused with 422 naming `segment` (tests/test_api_recommend_batch.py checks those)
    excluded = [positive_data_acceptance] if label == "POST /v1/recommend/batch/jobs" else []

    check()


def _header_is_valid(case: schemathesis.Case) -> bool:
    return case.meta is None or not case.meta.is_negative_at(ParameterLocation.HEADER)


def _consistent_block(case: schemathesis.Case) -> schemathesis.Case:
    """Apply the block rules JSON Schema cannot state: the body's id is the path's, and a block is neither its
    own prerequisite nor its own alternative. What is left is valid and must be stored (or 409 on a dangling
    reference)."""
    if isinstance(case.body, dict) and case.path_parameters:
        content_id = unquote(case.path_parameters["content_id"])  # schemathesis keeps it URL-encoded
        case.body["content_id"] = content_id
        for name in ("prerequisite_id", "alternative_id"):
            if case.body.get(name) == content_id:
                case.body[name] = None
    return case


def test_every_body_in_the_schema_has_an_example(tmp_path_factory: pytest.TempPathFactory) -> None:
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("openapi") / "data"))
    document = app.openapi()
    components = document["components"]["schemas"]

    def has_example(schema: dict[str, object]) -> bool:
        ref = schema.get("$ref")
        target = components[str(ref).rsplit("/", 1)[1]] if ref else schema
        return bool(target.get("examples") or target.get("example"))

    missing = []
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                checked += 1
                if not has_example(body["schema"]):
                    missing.append(f"{method.upper()} {path} request")
            for status, response in operation["responses"].items():
                content = response.get("content", {}).get("application/json")
                if content:
                    checked += 1
                    if not has_example(content["schema"]):
                        missing.append(f"{method.upper()} {path} {status}")
    assert missing == []
    assert checked >= 30
