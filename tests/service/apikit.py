"""Test support for the HTTP API: a tiny real drafter and small helpers.

``ColourDrafter`` implements the Drafter protocol for real: it reads the pixels and names
the mean colour, fast enough to run hundreds of requests in a test (the way infinity's
API tests use a dummy engine). It also fails loudly if two threads ever call it at once,
because real backends are not thread-safe.
"""
from __future__ import annotations

import base64
import io
import socket
import threading
import time
from collections.abc import Sequence

from PIL import Image, ImageStat

from models.base import Drafter
from models.draft import Draft, Evidence, ModelRef

PALETTE = {
    "red": (220, 30, 30), "green": (30, 160, 60), "blue": (30, 60, 220), "yellow": (235, 220, 40),
    "black": (10, 10, 10), "white": (245, 245, 245), "grey": (128, 128, 128), "purple": (130, 40, 160),
    "orange": (240, 140, 20),
}


def colour_name(rgb: Sequence[float]) -> str:
    return min(PALETTE, key=lambda n: sum((a - b) ** 2 for a, b in zip(rgb, PALETTE[n])))


class ColourDrafter(Drafter):
    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.batches: list[int] = []
        self._busy = threading.Lock()
        self._model = ModelRef(id="tiny-colour", revision="1", backend="test")

    @property
    def model(self) -> ModelRef:
        return self._model

    def draft(self, images, hints=None) -> list[Draft]:
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("ColourDrafter called from two threads at once")
        try:
            start = time.perf_counter()
            self.batches.append(len(images))
            if self.delay_s:
                time.sleep(self.delay_s)
            out = []
            for im in images:
                mean = ImageStat.Stat(im.convert("RGB")).mean
                name = colour_name(mean)
                out.append(Draft(text=f"A mostly {name} image.", confidence=0.9,
                                 evidence=Evidence(kind="illustration", greyscale=name in ("black", "white", "grey")),
                                 model=self._model, latency_ms=(time.perf_counter() - start) * 1000))
            return out
        finally:
            self._busy.release()


def png(colour: str | tuple = "red", size: tuple[int, int] = (24, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, PALETTE.get(colour, colour) if isinstance(colour, str) else colour).save(buf, "PNG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0.0 when none)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, _, value = line.rpartition(" ")
        base, _, rest = key.partition("{")
        if base == name and all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += float(value)
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings(tmp_path, **overrides):
    """Settings for a test app: its own data folder, no .env, quick webhook retries."""
    from service.settings import Settings

    base = {"data_dir": tmp_path, "log_format": "json", "webhook_retry_delays_s": [0.2, 0.4]}
    return Settings(_env_file=None, **(base | overrides))


def wait_ready(client, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get("/ready").status_code != 200:
        if time.monotonic() > deadline:
            raise AssertionError("app never became ready")
        time.sleep(0.02)


def wait_for(predicate, timeout_s: float = 20.0, every_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(every_s)
