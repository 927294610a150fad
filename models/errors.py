"""Typed refusals for images. ``code`` is the stable machine-readable contract (the
HTTP API's error code); ``reason`` is finer detail."""
from __future__ import annotations


class ImageError(Exception):
    """Any refusal. ``code`` is the stable machine-readable contract (it is the HTTP
    API's error code); ``reason`` is finer detail; ``str(err)`` is for humans."""

    code = "invalid_image"

    def __init__(self, reason: str, message: str, *, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.reason = reason
        self.message = message

    def __reduce__(self):  # keep code/reason across pickling (process pools)
        return (_restore_error, (type(self), self.code, self.reason, self.message))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, reason={self.reason!r}, message={self.message!r})"


def _restore_error(cls, code, reason, message):
    err = cls.__new__(cls)
    ImageError.__init__(err, reason, message, code=code)
    return err


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
