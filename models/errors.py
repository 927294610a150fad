"""One family of errors for everything the service can refuse or fail at.

Every error is an ``AltTextError`` carrying ``code`` (the stable, machine-readable contract:
the HTTP API's error code), ``status`` (its HTTP status), ``reason`` (finer detail, used in
metrics), ``message`` (for humans) and ``headers`` (such as Retry-After). The HTTP API has one
exception handler for the family; batch items and job items use ``item_error``. To add a
code: add it to ``CODES`` here and to the README's table of codes (a test compares them).

This module is a leaf (it imports nothing of ours), so models, service and evaluation can all
raise members of the family.
"""
from __future__ import annotations

from collections.abc import Mapping

# code -> HTTP status. Every code the service can emit, and only those.
CODES: dict[str, int] = {
    "invalid_image": 400,
    "fetch_blocked": 400,
    "host_not_allowed": 400,
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "idempotency_conflict": 409,
    "image_too_large": 413,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "invalid_request": 422,
    "rate_limited": 429,
    "internal": 500,
    "fetch_failed": 502,
    "upstream_unavailable": 502,
    "overloaded": 503,
    "upstream_rate_limited": 503,
    "storage_unavailable": 503,
    "timeout": 504,
}
# Codes only the command line and the Python API raise (local files); never sent over HTTP.
LOCAL_CODES: dict[str, int] = {"invalid_source": 400, "model_unavailable": 503}


class AltTextError(Exception):
    """Base of the family. Subclasses set ``code`` (and may set ``reason``/``message`` defaults)."""

    code: str = "internal"

    def __init__(self, reason: str | None = None, message: str | None = None, *, code: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        if code is not None:
            self.code = code
        if self.code not in CODES and self.code not in LOCAL_CODES:
            raise ValueError(f"unknown error code {self.code!r}: add it to models.errors.CODES")
        self.reason = reason or self.code
        self.message = message or self.default_message()
        self.headers = dict(headers or {})
        super().__init__(self.message)

    def default_message(self) -> str:
        return "Something went wrong on our side." if self.code == "internal" else self.code.replace("_", " ")

    @property
    def status(self) -> int:
        return CODES.get(self.code) or LOCAL_CODES[self.code]

    def item(self) -> dict[str, str]:
        """The error as a batch or job item carries it: {"code", "message"}."""
        return {"code": self.code, "message": self.message}

    def __reduce__(self):  # keep code/reason/message/headers across pickling (process pools)
        return (_restore, (type(self), self.code, self.reason, self.message, self.headers))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, reason={self.reason!r}, message={self.message!r})"


def _restore(cls, code, reason, message, headers):
    err = cls.__new__(cls)
    AltTextError.__init__(err, reason, message, code=code, headers=headers)
    return err


def item_error(exc: BaseException) -> AltTextError:
    """Any exception as a member of the family: itself, or ``internal`` for anything unexpected."""
    if isinstance(exc, AltTextError):
        return exc
    return AltTextError("internal", "The model failed on this image.", code="internal")


class ImageError(AltTextError):
    """Any refusal of an image. ``reason`` is finer detail; ``str(err)`` is for humans."""

    code = "invalid_image"

    def __init__(self, reason: str, message: str, *, code: str | None = None):
        super().__init__(reason, message, code=code)


class InvalidImage(ImageError):
    """reasons: ``empty``, ``truncated`` (decode failed after a valid header),
    ``corrupt`` (header undecodable), ``unsafe_svg`` (SVG declaring XML entities)."""

    code = "invalid_image"


class ImageTooLarge(ImageError):
    """reasons: ``bytes``, ``pixels``, ``svg_complexity`` (too many elements/too deep,
    or rendering ran out of its memory/time budget)."""

    code = "image_too_large"


class UnsupportedMediaType(ImageError):
    """reason: the detected format name (e.g. ``ICO``, ``SVG``) or ``unknown``."""

    code = "unsupported_media_type"


class ImageNotFound(ImageError):
    """Local path problems. reasons: ``missing``, ``not_a_file``, ``unreadable``."""

    code = "not_found"


class InvalidSource(ImageError):
    """The source itself is not something this loader takes. reason: ``url``."""

    code = "invalid_source"


class ModelError(AltTextError):
    """The drafter itself failed (not the image): it could not be loaded, or a remote model server
    did not answer. ``retry_after`` (seconds) when the server said when to come back."""

    code = "model_unavailable"

    def __init__(self, reason: str, message: str, *, code: str | None = None, retry_after: float | None = None):
        headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else None
        super().__init__(reason, message, code=code, headers=headers)
        self.retry_after = retry_after

    def __reduce__(self):
        return (_restore_model_error, (type(self), self.code, self.reason, self.message, self.retry_after))


def _restore_model_error(cls, code, reason, message, retry_after):
    err = cls.__new__(cls)
    ModelError.__init__(err, reason, message, code=code, retry_after=retry_after)
    return err


class ModelLoadError(ModelError):
    """The model could not be had. reasons: ``not_found`` (no such local path or hub id),
    ``offline`` (not cached and no hub access), ``gated``, ``unsupported`` (not an image-to-text
    model), ``missing_package``, ``unreachable`` (remote server down), ``invalid``."""

    code = "model_unavailable"


class UpstreamError(ModelError):
    """A remote model server failed. reasons: ``connection``, ``status_NNN``, ``bad_response``."""

    code = "upstream_unavailable"


class UpstreamRateLimited(UpstreamError):
    """The remote server kept answering 429 after our retries; ``retry_after`` if it said."""

    code = "upstream_rate_limited"


class UpstreamTimeout(UpstreamError):
    """The remote server did not answer within the timeout (after retries)."""

    code = "timeout"
