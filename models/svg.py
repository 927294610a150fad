"""SVG input made safe: the XML is parsed and rebuilt without entities or outside
references, then rendered by resvg (Rust) in a resource-limited child process,
because hostile SVGs can make resvg read local files, abort the whole process on a
failed allocation, or spin for minutes.
"""
from __future__ import annotations

import base64
import importlib.util
import io
import math
import re
import subprocess
import sys
from xml.etree import ElementTree as ET
from xml.parsers import expat

from PIL import Image

from models.errors import ImageError, ImageTooLarge, InvalidImage, UnsupportedMediaType

SUPPORTED = importlib.util.find_spec("resvg_py") is not None
MAX_SIDE = 1024          # SVGs are scaled to fit this box (up or down)
TIMEOUT_S = 10.0
MEMORY_BYTES = 1 << 30
_MAX_ELEMENTS = 100_000  # bounds our own parse tree before anything renders
_MAX_DEPTH = 256         # also keeps ElementTree's recursive serialiser safe
_EMBEDDED = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}


def looks_like_svg(data: bytes) -> bool:
    return data.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] == b"<" and b"<svg" in data


class NotSvg(Exception):
    """The XML's root is not <svg> (HTML and the like)."""


def sanitise(data: bytes, max_pixels: int) -> str:
    """Parse with expat and re-serialise, so the renderer only ever sees a document
    with no DTD, no entities and no references outside itself.

    - entity declarations are refused outright (billion laughs, external entities);
      expat itself never fetches anything.
    - every ``href`` that is not ``#fragment`` is dropped, except embedded
      PNG/JPEG/GIF/WebP data: URIs, which are size-checked and re-encoded with the
      type Pillow detected. resvg would otherwise read local files (``/etc/...``,
      paths relative to the cwd) and render nested SVG data: URIs without our checks.
    """
    parser = expat.ParserCreate(namespace_separator="}")
    builder = ET.TreeBuilder()
    state = {"elements": 0, "depth": 0, "embedded_pixels": 0}

    def refuse_entities(*_args):
        raise InvalidImage("unsafe_svg", "SVG documents that declare XML entities are refused.")

    def start(name, attrs):
        if state["elements"] == 0 and name.rpartition("}")[2] != "svg":
            raise NotSvg
        state["elements"] += 1
        state["depth"] += 1
        if state["elements"] > _MAX_ELEMENTS or state["depth"] > _MAX_DEPTH:
            raise ImageTooLarge("svg_complexity", "The SVG has too many elements or is nested too deeply.")
        clean = {}
        for key, value in attrs.items():
            if key.rpartition("}")[2] == "href":
                value = _clean_href(value, state, max_pixels)
                if value is None:
                    continue
            clean[_qname(key)] = value
        builder.start(_qname(name), clean)

    def end(name):
        state["depth"] -= 1
        builder.end(_qname(name))

    parser.EntityDeclHandler = refuse_entities
    parser.UnparsedEntityDeclHandler = refuse_entities
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
        root = builder.close()
    except ImageError:
        raise
    except (expat.ExpatError, ValueError, AssertionError, IndexError):
        if state["elements"] == 0:
            raise NotSvg from None
        raise InvalidImage("corrupt", "The SVG is not well-formed XML.") from None
    if root.tag.rpartition("}")[2] != "svg":
        raise NotSvg
    return ET.tostring(root, encoding="unicode")


def _qname(name: str) -> str:
    # expat gives "namespace}local"; ElementTree wants "{namespace}local"
    return "{" + name if "}" in name else name


def _clean_href(value: str, state: dict, max_pixels: int) -> str | None:
    v = value.strip()
    if v.startswith("#"):
        return v
    if v[:5].lower() != "data:":
        return None
    header, sep, payload = v[5:].partition(",")
    if not sep or "base64" not in header.lower().split(";")[1:]:
        return None
    try:
        raw = base64.b64decode(re.sub(r"\s+", "", payload), validate=True)
        with Image.open(io.BytesIO(raw), formats=list(_EMBEDDED)) as im:
            fmt, (w, h) = im.format, im.size
    except Exception:
        return None
    # every embedded image counts against the one pixel budget: resvg decodes them all
    state["embedded_pixels"] += w * h
    if fmt not in _EMBEDDED or state["embedded_pixels"] > max_pixels:
        return None
    return f"data:{_EMBEDDED[fmt]};base64,{base64.b64encode(raw).decode('ascii')}"


# Runs in a fresh interpreter (-I: no cwd/PYTHONPATH on sys.path). Limits are set
# before resvg is imported. Exit 3 = resvg rejected the document, 5 = no resvg.
_WORKER = r"""
import resource, sys
mem, cpu, side = (int(a) for a in sys.argv[1:4])
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
try:
    import resvg_py
except ImportError:
    sys.exit(5)
svg = sys.stdin.buffer.read().decode("utf-8")
try:
    png = resvg_py.svg_to_bytes(svg_string=svg, width=side, height=side)
except ValueError as exc:
    sys.stderr.write(str(exc))
    sys.exit(3)
except MemoryError:
    sys.exit(4)
except BaseException as exc:  # pyo3 PanicException derives from BaseException
    sys.stderr.write(repr(exc))
    sys.exit(3)
sys.stdout.buffer.write(png)
"""


def render(svg: str, side: int) -> bytes:
    cmd = [
        sys.executable, "-I", "-c", _WORKER,
        str(MEMORY_BYTES), str(math.ceil(TIMEOUT_S)), str(side),
    ]
    try:
        proc = subprocess.run(cmd, input=svg.encode("utf-8"), capture_output=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ImageTooLarge("svg_complexity", "The SVG took too long to render.") from None
    except OSError as exc:
        raise UnsupportedMediaType("SVG", f"SVG rendering is unavailable: {exc}.") from None
    if proc.returncode == 0 and proc.stdout:
        return proc.stdout
    if proc.returncode == 3:
        raise InvalidImage("corrupt", "The SVG could not be rendered.")
    if proc.returncode == 5:
        raise UnsupportedMediaType("SVG", "SVG rendering is unavailable (resvg_py not importable).")
    # killed by a signal (rlimit/abort) or out of memory
    raise ImageTooLarge("svg_complexity", "The SVG needs too much memory or time to render.")
