"""--engine ray on a local Ray with two workers gives exactly the local engine's rows."""
from __future__ import annotations

import os

import pytest

from service.backfill.runner import BackfillOptions, run
from tests.support.backfill import backfill, read_rows, settings, write_images

try:
    import ray  # noqa: F401
except ImportError:  # an optional extra; the dev set-up installs it, so CI must have it
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("ray is not installed (pip install 'alttext[ray]')", allow_module_level=True)


def test_ray_engine_rows_equal_local_engine_rows(tmp_path):
    from service.backfill.ray_engine import RayEngine

    write_images(tmp_path / "imgs", {f"{i:02d}.png": colour for i, colour in
                                     enumerate(["red", "blue", "red", "green", "yellow", "blue", "grey", "black",
                                                "purple", "orange", "red", "white"])})
    (tmp_path / "imgs" / "05-junk.png").write_bytes(b"nope")
    _, local, _ = backfill(tmp_path / "imgs", tmp_path / "local.jsonl")

    cfg = settings()
    engines = []

    def make():
        engines.append(RayEngine(cfg, concurrency=2, batch_size=4))
        return engines[-1]

    summary = run(BackfillOptions(source=str(tmp_path / "imgs"), out=tmp_path / "ray.jsonl", progress="off",
                                  batch_size=16), cfg, make)  # one chunk: one actor pool
    assert read_rows(tmp_path / "ray.jsonl") == local
    assert summary.items == 13 and summary.decisions == {"fill": 12, "error": 1}
    assert len(engines) == 1
