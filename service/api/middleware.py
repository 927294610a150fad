"""ASGI middleware: request ids, access log and HTTP metrics, and the request body cap."""
from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.errors import AltTextError
from service.api.errors import ApiError, send_error
from service.observability import Metrics

access = logging.getLogger("service.access")
log = logging.getLogger("service.api")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContext:
    """Outermost layer: every response gets X-Request-Id, is counted and timed by route
    template (not raw path, to bound label cardinality), and logged as one JSON line.
    Unhandled errors become the 500 envelope here, so they carry the request id too."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        start, status = time.perf_counter(), 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id})
            if not started:
                await send_error(send_with_id, AltTextError(code="internal"), request_id)
            self.metrics.failures.labels("internal", "internal").inc()
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method, str(status)).observe(elapsed)
            state = scope.get("state", {})
            access.info("request", extra={
                "request_id": request_id, "method": method, "route": route, "status": status,
                "duration_ms": round(elapsed * 1000, 1), "key_id": state.get("key_id"),
                "client": (scope.get("client") or ("", 0))[0],
            })


class Admission:
    """Answers 503 + Retry-After to describe requests beyond ``limit`` in flight, before their
    bodies are read: the batcher's queue bounds images, this bounds the uploads waiting to
    reach it, so memory stays flat however many clients connect."""

    def __init__(self, app: ASGIApp, limit: int, paths: tuple[str, ...], retry_after, metrics: Metrics) -> None:
        self.app, self.limit, self.paths, self.retry_after, self.metrics = app, limit, paths, retry_after, metrics
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        if self.in_flight >= self.limit:
            self.metrics.failures.labels("overloaded", "in_flight").inc()
            request_id = scope.get("state", {}).get("request_id", "")
            await send_error(send, AltTextError("in_flight", "Too many requests in flight; retry shortly.",
                                                code="overloaded", headers={"Retry-After": str(self.retry_after())}),
                             request_id)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class BodyLimit:
    """Refuses bodies over ``max_bytes``: by Content-Length up front, and by counting while
    reading, so chunked uploads cannot grow memory or disk either."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(scope, send)
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise self._error()
            return message

        await self.app(scope, counted, send)

    def _error(self) -> ApiError:
        return ApiError("payload_too_large", f"The request body is over the {self.max_bytes}-byte limit.")

    async def _refuse(self, scope: Scope, send: Send) -> None:
        request_id = scope.get("state", {}).get("request_id", "")
        await send_error(send, self._error(), request_id, [(b"connection", b"close")])
