"""One error envelope for every failure: {"error": {"code", "message", "request_id"}}."""
from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from service.api.schemas import ErrorEnvelope
from service.observability import Metrics

log = logging.getLogger("service.api")

STATUS = {
    "invalid_request": 422,
    "invalid_image": 400,
    "unsupported_media_type": 415,
    "image_too_large": 413,
    "payload_too_large": 413,
    "fetch_blocked": 400,
    "fetch_failed": 502,
    "unauthorized": 401,
    "not_found": 404,
    "idempotency_conflict": 409,
    "method_not_allowed": 405,
    "rate_limited": 429,
    "overloaded": 503,
    "timeout": 504,
    "internal": 500,
}


class ApiError(Exception):
    def __init__(self, code: str, message: str, *, status: int | None = None, reason: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason or code
        self.status = status or STATUS[code]
        self.headers = headers or {}

    @classmethod
    def of(cls, exc) -> ApiError:
        """From an ImageError or FetchError (both carry .code and .reason)."""
        return cls(exc.code, getattr(exc, "message", None) or str(exc), reason=exc.reason)


def documented(*codes: int) -> dict:
    """OpenAPI ``responses`` entry: these statuses answer with the error envelope."""
    return {code: {"model": ErrorEnvelope} for code in codes}


def envelope_body(code: str, message: str, request_id: str) -> bytes:
    """The envelope as bytes, for middleware that answers before routing."""
    return json.dumps({"error": {"code": code, "message": message, "request_id": request_id}}).encode()


def validation_message(errors: list[dict], prefix: tuple = ()) -> str:
    """'field: problem' lines, without echoing the input (it may hold image data or secrets)."""
    parts = []
    for err in errors[:10]:
        loc = ".".join(str(p) for p in (*prefix, *err.get("loc", ())) if p not in ("body",))
        parts.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else err.get("msg", "invalid"))
    return "; ".join(parts) or "The request is not valid."


def envelope(request: Request, exc: ApiError) -> JSONResponse:
    request_id = getattr(request.state, "request_id", "") or ""
    return JSONResponse({"error": {"code": exc.code, "message": exc.message, "request_id": request_id}},
                        status_code=exc.status, headers=exc.headers)


def install(app: FastAPI, metrics: Metrics) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        metrics.failures.labels(exc.code, exc.reason).inc()
        return envelope(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return await api_error(request, ApiError("invalid_request", validation_message(exc.errors())))

    @app.exception_handler(ValidationError)
    async def invalid_model(request: Request, exc: ValidationError):
        return await api_error(request, ApiError("invalid_request", validation_message(exc.errors())))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
                401: "unauthorized"}.get(exc.status_code, "invalid_request")
        message = exc.detail if isinstance(exc.detail, str) else "The request is not valid."
        headers = dict(exc.headers or {})
        status = 422 if exc.status_code == 400 else exc.status_code  # FastAPI's "error parsing the body"
        if exc.status_code == 405:  # Starlette names only the first matching route's methods
            headers["Allow"] = ", ".join(sorted({
                method for route in request.app.router.routes
                if isinstance(route, Route) and route.matches(request.scope)[0] != Match.NONE
                for method in route.methods or ()}))
        return await api_error(request, ApiError(code, message, status=status, headers=headers))
