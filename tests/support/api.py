"""Helpers for HTTP API tests: small images, settings for a test app, waiting, metrics and jobs."""
from __future__ import annotations

import base64
import io
import socket
import time

from PIL import Image

from tests.support.drafters import PALETTE

COLOURS = list(PALETTE)


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

    # TestClient sends Host: testserver; real servers in tests are reached as 127.0.0.1.
    base = {"data_dir": tmp_path, "log_format": "json", "webhook_retry_delays_s": [0.2, 0.4],
            "allowed_hosts": ["testserver", "127.0.0.1", "localhost", "::1"]}
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


# --- jobs ----------------------------------------------------------------------------


def items(n: int) -> list[dict]:
    return [{"id": f"img-{i}", "image_base64": b64(png(COLOURS[i % len(COLOURS)], size=(8 + i, 8)))}
            for i in range(n)]


def expected_alt(i: int) -> str:
    return f"A mostly {COLOURS[i % len(COLOURS)]} image."


def finished(c, url: str) -> dict:
    return wait_for(lambda: (job := c.get(url).json())["status"] in ("completed", "cancelled") and job)


def all_results(c, url: str, limit: int) -> list[dict]:
    out, after = [], -1
    while True:
        page = c.get(f"{url}/results", params={"after": after, "limit": limit}).json()
        out += page["items"]
        if page["next_after"] is None:
            return out
        after = page["next_after"]
