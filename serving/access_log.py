"""Per-request observation: one structured access-log line and one latency sample per request.

The line holds the method, the route *template* (``/v1/content/{content_id}``, not the path), the status, the
duration, a request id and the id of the API key used: never the key itself, headers, query strings or bodies.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.metrics import UNMATCHED_ROUTE, ServingMetrics

log = structlog.get_logger("ripen.access")

REQUEST_ID_HEADER = b"x-request-id"
KEY_ID_SCOPE = "ripen.key_id"
"""Where authentication leaves the id of the key used, for the access log."""
_SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._\-]{1,64}$")


def route_template(scope: Scope) -> str:
    """The matched route's path template, or ``unmatched`` (bounded label cardinality)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class AccessLogMiddleware:
    """Time each HTTP request, record it in ``metrics`` and log it; echo or assign ``X-Request-ID``."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = route_template(scope)
            self.metrics.observe_request(scope["method"], route, status, seconds)
            log.info(
                "request",
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round(seconds * 1000, 2),
                key_id=scope.get(KEY_ID_SCOPE),
            )
            structlog.contextvars.clear_contextvars()


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER and _SAFE_REQUEST_ID.match(value):
            return str(value.decode())
    return uuid.uuid4().hex
