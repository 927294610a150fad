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


JSON_TYPES = (b"application/json", b"application/jsonl", b"application/x-ndjson", b"application/json-lines")


class BodyLimit:
    """Refuses bodies over ``max_bytes`` (``max_json_bytes`` for JSON and JSON Lines, which
    are read whole and parsed in memory, where multipart files spool to disk): by
    Content-Length up front, and by counting while reading, so chunked uploads cannot grow
    memory or disk either. JSON bodies also share ``json_budget`` bytes across all requests
    in flight: a request that would take more waits outside (503 + Retry-After), so parsing
    many large bodies at once cannot multiply memory."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_json_bytes: int | None = None,
                 json_budget: int | None = None, metrics: Metrics | None = None) -> None:
        self.app, self.max_bytes, self.metrics = app, max_bytes, metrics
        self.max_json_bytes = min(max_json_bytes or max_bytes, max_bytes)
        self.json_budget = json_budget
        self.json_in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        is_json = headers.get(b"content-type", b"").split(b";")[0].strip().lower() in JSON_TYPES
        limit = self.max_json_bytes if is_json else self.max_bytes
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            return await self._refuse(scope, send, limit)
        reserved = 0

        def reserve(size: int) -> bool:
            nonlocal reserved
            if not is_json or self.json_budget is None or size <= reserved:
                return True
            extra = size - reserved
            # one request alone may always use its whole limit, or large bodies could never pass
            if self.json_in_flight + extra > self.json_budget and self.json_in_flight > 0:
                return False
            self.json_in_flight += extra
            reserved = size
            return True

        if declared.isdigit() and not reserve(int(declared)):
            return await self._busy(scope, send)
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise self._error(limit)
                if not reserve(seen):
                    raise ApiError("overloaded", "Too many large request bodies in flight; retry shortly.",
                                   reason="body_budget", headers={"Retry-After": "1"})
            return message

        try:
            await self.app(scope, counted, send)
        finally:
            self.json_in_flight -= reserved

    def _error(self, limit: int) -> ApiError:
        return ApiError("payload_too_large", f"The request body is over the {limit}-byte limit.")

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        request_id = scope.get("state", {}).get("request_id", "")
        await send_error(send, self._error(limit), request_id, [(b"connection", b"close")])

    async def _busy(self, scope: Scope, send: Send) -> None:
        if self.metrics:
            self.metrics.failures.labels("overloaded", "body_budget").inc()
        err = ApiError("overloaded", "Too many large request bodies in flight; retry shortly.", reason="body_budget",
                       headers={"Retry-After": "1"})
        await send_error(send, err, scope.get("state", {}).get("request_id", ""), [(b"connection", b"close")])


def host_of(scope: Scope) -> str | None:
    """The Host header's name, lower case, without the port or IPv6 brackets."""
    raw = dict(scope["headers"]).get(b"host")
    if raw is None:
        return None
    host = raw.decode("latin-1").strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else None
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host: str | None, names: list[str]) -> bool:
    if "*" in names:
        return True
    if not host:
        return False
    return any(host == name or (name.startswith("*.") and host.endswith(name[1:])) for name in names)


class AllowedHosts:
    """Answers 400 ``host_not_allowed`` to a Host header that is not this service's: a page on
    another site that rebinds its own name to 127.0.0.1 still sends that name, so it cannot
    read a service that needs no key on loopback."""

    def __init__(self, app: ASGIApp, names: list[str]) -> None:
        self.app, self.names = app, names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or host_allowed(host_of(scope), self.names):
            return await self.app(scope, receive, send)
        await _answer(scope, send, ApiError("host_not_allowed", "This service does not answer to that Host name; "
                                                                "see ALTTEXT_ALLOWED_HOSTS."))


class OpsGuard:
    """Where keys are required, the service's description and metrics need one too
    (``ALTTEXT_PROTECT_OPS``); /health and /ready stay open for load balancers."""

    def __init__(self, app: ASGIApp, paths: tuple[str, ...], verify) -> None:
        self.app, self.paths, self.verify = app, paths, verify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        auth = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, secret = auth.partition(" ")
        if scheme.lower() == "bearer" and secret.strip() and await self.verify(secret.strip()):
            return await self.app(scope, receive, send)
        await _answer(scope, send, ApiError("unauthorized", "Send a valid API key as 'Authorization: Bearer <key>'.",
                                            headers={"WWW-Authenticate": "Bearer"}))


async def _answer(scope: Scope, send: Send, err: ApiError) -> None:
    await send_error(send, err, scope.get("state", {}).get("request_id", ""))
