"""Load an untrusted image into a plain RGB ``PIL.Image``: the one entry point every
part of the product uses, so all the safety checks live here.

Order matters: byte cap -> format sniff -> header-only pixel check -> decode.
Nothing is decoded before both caps have been checked.
"""
from __future__ import annotations

import hashlib
import io
import math
import os
import re
import stat
from dataclasses import dataclass
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from models import svg
from models.errors import (
    ImageError,
    ImageNotFound,
    ImageTooLarge,
    InvalidImage,
    InvalidSource,
    UnsupportedMediaType,
)

__all__ = [
    "ImageError",
    "InvalidImage",
    "ImageTooLarge",
    "UnsupportedMediaType",
    "ImageNotFound",
    "InvalidSource",
    "LoadedImage",
    "load_image",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
]

DEFAULT_MAX_BYTES = 20 * 2**20
DEFAULT_MAX_PIXELS = 40_000_000

# Pillow's format names we accept. MPO is what Pillow calls a JPEG carrying extra
# pictures (many phone/camera photos); it is reported as JPEG.
_ALLOWED = {"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF"}
_ALIASES = {"MPO": "JPEG"}
_MAX_TIFF_PAGES = 1000  # TIFF page counts are reported up to this

# ----------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class LoadedImage:
    image: Image.Image   # RGB, fully loaded, EXIF orientation applied, alpha flattened on white
    format: str          # "JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF" or "SVG"
    width: int
    height: int
    sha256: str          # hex digest of the encoded bytes (cache key)
    had_alpha: bool      # some pixel was not fully opaque before flattening
    frames: int          # frames/pages in the file; only the first is returned


Source = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]"]


def load_image(
    source: Source,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    decode_side: int | None = None,
) -> LoadedImage:
    """Decode ``source`` (encoded bytes, or a local file path) into a ``LoadedImage``.

    Raises ``ImageError`` (see its subclasses) for anything that is not a loadable,
    allowed, reasonably sized image. URLs are refused: fetching is the HTTP layer's job.

    ``decode_side``: a JPEG at least twice this size on its long side is decoded at 1/2,
    1/4 or 1/8 scale (libjpeg's own DCT scaling, much cheaper than a full decode and a
    resize), the smallest that keeps the long side at least ``decode_side`` px. ``width`` and
    ``height`` still give the stored picture's size. None: always full size.
    """
    data = _read_source(source, max_bytes)
    if not data:
        raise InvalidImage("empty", "The image is empty (0 bytes).")
    if len(data) > max_bytes:
        raise ImageTooLarge("bytes", f"The image is {len(data)} bytes; the limit is {max_bytes}.")
    digest = hashlib.sha256(data).hexdigest()

    if svg.looks_like_svg(data):
        rendered = _load_svg(data, max_pixels, digest)
        if rendered is not None:
            return rendered
    return _load_raster(data, max_pixels, digest, decode_side)


# ----------------------------------------------------------------------------- input

_URL = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://")


def _read_source(source: Source, max_bytes: int) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, str) and _URL.match(source):
        raise InvalidSource(
            "url",
            "load_image takes encoded bytes or a local file path, not a URL; "
            "URLs are fetched by the HTTP layer.",
        )
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"load_image expects bytes or a path, got {type(source).__name__}")
    path = os.fspath(source)
    try:
        # stat first: a FIFO or device would block or stream forever on read
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ImageNotFound("not_a_file", f"Not a regular file: {path!r}.")
        if st.st_size > max_bytes:
            raise ImageTooLarge("bytes", f"The image is {st.st_size} bytes; the limit is {max_bytes}.")
        with open(path, "rb") as fh:
            return fh.read(max_bytes + 1)  # +1 so a file that grew still trips the cap
    except FileNotFoundError:
        raise ImageNotFound("missing", f"No such file: {path!r}.") from None
    except (IsADirectoryError, NotADirectoryError):
        raise ImageNotFound("not_a_file", f"Not a regular file: {path!r}.") from None
    except OSError as exc:  # permissions, I/O errors, bad path bytes
        raise ImageNotFound("unreadable", f"Cannot read {path!r}: {exc.strerror or exc}.") from None
    except ValueError:  # e.g. embedded NUL in the path
        raise ImageNotFound("missing", f"Invalid file path: {path!r}.") from None


# ----------------------------------------------------------------------------- raster


def _load_raster(data: bytes, max_pixels: int, digest: str, decode_side: int | None = None) -> LoadedImage:
    # Pillow's own bomb check (MAX_IMAGE_PIXELS, global) still runs inside open();
    # we don't mutate it, we check our own per-call limit right after the header is
    # read. DecompressionBombWarning is only an exception if the app's warning
    # filters make it one; catching it costs nothing.
    try:
        im = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge("pixels", f"The image has more pixels than allowed ({max_pixels}).") from None
    except UnidentifiedImageError:
        if _has_allowed_magic(data):
            raise InvalidImage("corrupt", "The image header could not be decoded.") from None
        raise UnsupportedMediaType("unknown", "The data is not a supported image format.") from None
    except MemoryError:
        raise
    except Exception:  # header parsers raise all sorts on hostile input
        raise InvalidImage("corrupt", "The image header could not be decoded.") from None

    with im:
        fmt = _ALIASES.get(im.format or "", im.format or "unknown")
        if fmt not in _ALLOWED:
            raise UnsupportedMediaType(fmt, f"{fmt} images are not supported.")
        width, height = im.size
        if width <= 0 or height <= 0:
            raise InvalidImage("corrupt", "The image declares an empty size.")
        if width * height > max_pixels:
            raise ImageTooLarge(
                "pixels", f"The image is {width}x{height} pixels; the limit is {max_pixels} pixels."
            )
        try:
            frames = _count_frames(im)
            if decode_side and fmt == "JPEG" and max(width, height) >= 2 * decode_side:
                ratio = decode_side / max(width, height)
                im.draft(im.mode, (math.ceil(width * ratio), math.ceil(height * ratio)))
            decoded = im.size
            im.load()  # truncated data raises here (LOAD_TRUNCATED_IMAGES stays False)
            rgb, had_alpha = _to_rgb(_orient(im))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageTooLarge("pixels", f"The image has more pixels than allowed ({max_pixels}).") from None
        except MemoryError:
            raise
        except Exception:
            raise InvalidImage("truncated", "The image data is truncated or corrupt.") from None

    # the stored size, turned as EXIF says (only a quarter turn changes the size)
    if decoded == (width, height):
        width, height = rgb.width, rgb.height
    elif rgb.size != decoded:
        width, height = height, width
    return LoadedImage(rgb, fmt, width, height, digest, had_alpha, frames)


def _count_frames(im: Image.Image) -> int:
    """Frames (GIF/WebP/APNG/AVIF) or pages (TIFF); leaves ``im`` on the first one.
    Counting is best effort: a broken later frame must not cost us the first."""
    n = 1
    try:
        if im.format != "TIFF":
            n = int(getattr(im, "n_frames", 1) or 1)
        else:
            # Pillow's TIFF n_frames walks every IFD with a quadratic check: a 20 MB
            # file of tiny pages takes minutes. Count up to a cap instead.
            while n < _MAX_TIFF_PAGES:
                im.seek(n)
                n += 1
    except MemoryError:
        raise
    except Exception:
        pass
    im.seek(0)
    return n


def _has_allowed_magic(data: bytes) -> bool:
    """An allowed format's signature that Pillow still could not open = corrupt, not 'unknown'."""
    return (
        data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\0", b"MM\0*"))
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
        or (data[:2] == b"BM" and data[6:10] == b"\0\0\0\0")
        or (data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"))
    )


def _orient(im: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(im)
    except MemoryError:
        raise
    except Exception:  # a broken EXIF block should not cost us an otherwise good photo
        return im


def _to_rgb(im: Image.Image) -> tuple[Image.Image, bool]:
    """Any Pillow mode -> RGB; alpha (channel or transparency key) is composited on white."""
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        im = _to_8bit(im)
    if im.mode in ("La", "RGBa"):  # premultiplied; Pillow only un-premultiplies to LA/RGBA
        im = im.convert(im.mode[:-1] + "A")
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] == 255:
            return rgba.convert("RGB"), False
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB"), True
    # convert() always returns a new, fully loaded image, detached from the file
    return im.convert("RGB"), False


def _to_8bit(im: Image.Image) -> Image.Image:
    """16-bit/32-bit/float greyscale -> L. Pillow's own convert clips at 255,
    which turns most 16-bit images white."""
    arr = np.asarray(im)
    if im.mode == "F":
        arr = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        if arr.size and arr.max() <= 1.0:  # float images are usually 0..1
            arr = arr * 255.0
    elif arr.size and arr.max() > 255:
        arr = np.clip(arr, 0, 65535) >> 8  # treat as 16-bit
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")


# ----------------------------------------------------------------------------- svg


def _load_svg(data: bytes, max_pixels: int, digest: str) -> LoadedImage | None:
    """None when the document's root is not <svg> (HTML etc.): the caller then
    reports it as an unknown, unsupported type."""
    try:
        clean = svg.sanitise(data, max_pixels)
    except svg.NotSvg:
        return None
    if not svg.SUPPORTED:
        raise UnsupportedMediaType("SVG", "SVG images are not supported on this server.")
    side = max(1, min(svg.MAX_SIDE, math.isqrt(max_pixels)))
    png = svg.render(clean, side)
    try:
        with Image.open(io.BytesIO(png), formats=["PNG"]) as im:
            if im.width * im.height > side * side:  # the renderer is trusted to fit the box; verify
                raise ImageTooLarge("pixels", "The SVG rendered larger than allowed.")
            im.load()
            rgb, had_alpha = _to_rgb(im)
    except ImageError:
        raise
    except Exception:
        raise InvalidImage("corrupt", "The SVG could not be rendered.") from None
    return LoadedImage(rgb, "SVG", rgb.width, rgb.height, digest, had_alpha, 1)


