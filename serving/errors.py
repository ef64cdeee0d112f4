"""How the API refuses requests: JSON naming the field or the limit, never a 500 for bad input.

- malformed bodies, parameters and JSON → 422 ``ValidationErrorResponse`` (the field's location and the
  reason);
- bodies larger than ``Settings.max_request_bytes`` → 413, refused before they are read when
  ``Content-Length`` says so, and cut off while streaming when it does not;
- a store that cannot be reached → 503 with ``Retry-After`` (the caller should retry; nothing was
  acknowledged).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from features.event_store import EventStoreUnavailable
from serving.schemas import ErrorResponse, ValidationErrorResponse

log = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS = 5


class RequestTooLarge(HTTPException):
    """The request body is over the configured limit (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {limit} bytes")


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the refusals a route can give, so clients and schemathesis know them."""
    descriptions = {
        401: "Missing or unknown API key.",
        403: "The API key lacks the scope this route needs.",
        404: "No such resource.",
        409: "Conflicts with the current state.",
        413: "Request body or batch larger than the configured limit.",
        422: "Malformed request: the field is named in `loc` and `message`.",
        503: "A store is unreachable; retry after the `Retry-After` seconds.",
    }
    return {
        code: {
            "model": ValidationErrorResponse if code == 422 else ErrorResponse,
            "description": descriptions[code],
        }
        for code in codes
    }


def format_loc(loc: Sequence[str | int]) -> str:
    """``("body", "events", 0, "timestamp")`` → ``body.events[0].timestamp``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def validation_payload(errors: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The 422 body: field locations, messages and types; the rejected input is never echoed back."""
    detail = [
        {
            "loc": _location(error),
            "msg": _message(error),
            "type": str(error.get("type", "value_error")),
        }
        for error in errors
    ]
    if detail:
        first = detail[0]
        message = f"{format_loc(first['loc']) or 'request'}: {first['msg']}"
    else:
        message = "request: invalid"
    return {"message": message, "detail": detail}


def _location(error: dict[str, Any]) -> list[str | int]:
    loc = [p if isinstance(p, int) else str(p) for p in error.get("loc", ())]
    if error.get("type") == "json_invalid":
        return [p for p in loc if isinstance(p, str)]  # the offset goes into the message
    return loc


def _message(error: dict[str, Any]) -> str:
    """Pydantic's message, except for broken JSON, where it says where and what went wrong."""
    if error.get("type") == "json_invalid":
        loc = error.get("loc", ())
        where = f" at character {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
        reason = (error.get("ctx") or {}).get("error", "")
        return f"is not valid JSON{where}" + (f" ({reason})" if reason else "")
    return str(error.get("msg", "invalid value"))


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(validation_payload(exc.errors()), status_code=422)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI reports a body that is not UTF-8 as a generic 400; it is a malformed body like bad JSON.
        error = {"loc": ("body",), "msg": "is not valid JSON (not UTF-8 text)", "type": "json_invalid"}
        return JSONResponse(validation_payload([error]), status_code=422)
    return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


async def _on_store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.error("store_unavailable", error_type=type(exc).__name__, route=_route_template(request.scope))
    return JSONResponse(
        {"detail": "a store is unreachable; nothing was acknowledged, retry later"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug, not bad input: JSON 500 with the request id to quote; only the error's type is logged (its
    message could carry request data)."""
    log.error("unhandled_error", error_type=type(exc).__name__, route=_route_template(request.scope))
    return JSONResponse(
        {"detail": "internal error; the request id in X-Request-ID identifies it"}, status_code=500
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""
    app.add_exception_handler(Exception, _on_unexpected)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(OperationalError, _on_store_unavailable)
    app.add_exception_handler(DBAPIError, _on_store_unavailable)
    app.add_exception_handler(EventStoreUnavailable, _on_store_unavailable)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class BodySizeLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with a JSON 413, without reading more than the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, but got {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            response = JSONResponse({"detail": RequestTooLarge(self.max_bytes).detail}, status_code=413)
            await response(scope, receive, send)
            return
        received = 0
        limit = self.max_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
