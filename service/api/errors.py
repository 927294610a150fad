"""One error envelope for every failure: {"error": {"code", "message", "request_id"}}.

Every error the service raises is a ``models.errors.AltTextError`` (ImageError, FetchError,
Overloaded, IdempotencyConflict, ApiError, ...), each carrying its code, HTTP status, reason,
message and headers; one handler below turns any of them into the envelope. Codes and their
statuses are listed once, in ``models.errors.CODES`` (and the README's table, checked by a test)."""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from models.errors import AltTextError
from service.api.schemas import ErrorEnvelope
from service.observability import Metrics

log = logging.getLogger("service.api")

class ApiError(AltTextError):
    """A refusal decided by the HTTP layer itself (bad request shape, auth, limits, routing).
    ``status`` overrides the code's usual status only where HTTP already chose one."""

    def __init__(self, code: str, message: str, *, status: int | None = None, reason: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(reason, message, code=code, headers=headers)
        self._status = status

    @property
    def status(self) -> int:
        return self._status or super().status


def documented(*codes: int) -> dict:
    """OpenAPI ``responses`` entry: these statuses answer with the error envelope."""
    return {code: {"model": ErrorEnvelope} for code in codes}


def envelope_body(err: AltTextError, request_id: str) -> bytes:
    """The envelope as bytes, for middleware that answers before routing."""
    return json.dumps({"error": {"code": err.code, "message": err.message, "request_id": request_id}}).encode()


async def send_error(send, err: AltTextError, request_id: str, extra_headers: Sequence[tuple[bytes, bytes]] = ()):
    """Answer with the envelope from raw ASGI middleware (before FastAPI's handlers exist)."""
    headers = [(b"content-type", b"application/json"),
               *((k.lower().encode(), v.encode()) for k, v in err.headers.items()), *extra_headers]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": envelope_body(err, request_id)})


def validation_message(errors: list[dict], prefix: tuple = ()) -> str:
    """'field: problem' lines, without echoing the input (it may hold image data or secrets)."""
    parts = []
    for err in errors[:10]:
        loc = ".".join(str(p) for p in (*prefix, *err.get("loc", ())) if p not in ("body",))
        parts.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else err.get("msg", "invalid"))
    return "; ".join(parts) or "The request is not valid."


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> str:
    """The methods some route answers at this path: each method is tried against the router,
    so routes inside included routers count too."""
    scope = {k: v for k, v in request.scope.items() if k not in ("route", "endpoint", "path_params")}
    return ", ".join(method for method in _METHODS if any(
        route.matches({**scope, "method": method})[0] == Match.FULL for route in request.app.router.routes))


def envelope(request: Request, exc: AltTextError) -> JSONResponse:
    request_id = getattr(request.state, "request_id", "") or ""
    return JSONResponse({"error": {"code": exc.code, "message": exc.message, "request_id": request_id}},
                        status_code=exc.status, headers=exc.headers)


def install(app: FastAPI, metrics: Metrics) -> None:
    @app.exception_handler(AltTextError)
    async def api_error(request: Request, exc: AltTextError):
        metrics.failures.labels(exc.code, exc.reason).inc()
        return envelope(request, exc)

    @app.exception_handler(OperationalError)
    async def storage(request: Request, exc: OperationalError):
        # SQLite "database is locked" (busy past ALTTEXT_DB_BUSY_TIMEOUT_S) or "database or disk is
        # full", PostgreSQL unreachable: the transaction rolled back, nothing half-written.
        log.warning("database unavailable: %s", str(exc.orig)[:200])
        full = "full" in str(exc.orig).lower()
        return await api_error(request, ApiError(
            "storage_unavailable", "The database is full; the operator must free space." if full else
            "The database is busy; retry shortly.", reason="disk_full" if full else "busy",
            headers={"Retry-After": "30" if full else "5"}))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return await api_error(request, ApiError("invalid_request", validation_message(exc.errors())))

    @app.exception_handler(ValidationError)
    async def invalid_model(request: Request, exc: ValidationError):
        return await api_error(request, ApiError("invalid_request", validation_message(exc.errors())))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if isinstance(exc.__cause__, AltTextError):  # FastAPI wraps errors raised while it reads a body
            return await api_error(request, exc.__cause__)
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
                401: "unauthorized"}.get(exc.status_code, "invalid_request")
        message = exc.detail if isinstance(exc.detail, str) else "The request is not valid."
        headers = dict(exc.headers or {})
        status = 422 if exc.status_code == 400 else exc.status_code  # FastAPI's "error parsing the body"
        if exc.status_code == 405:  # Starlette names only the first matching route's methods
            headers["Allow"] = allowed_methods(request)
        return await api_error(request, ApiError(code, message, status=status, headers=headers))
