"""The batcher gives the model thread only drafter.draft; merging runs on its own thread."""
from __future__ import annotations

import asyncio
import threading

from models.imageio import load_image
from service import pipeline
from service.batching import Batcher
from service.observability import Metrics
from service.page import PageContext
from tests.support.api import metric, png, settings
from tests.support.drafters import ColourDrafter


def test_the_model_thread_runs_only_the_draft(tmp_path, monkeypatch):
    threads: dict[str, set[str]] = {"draft": set(), "merge": set()}

    class Recording(ColourDrafter):
        def draft(self, images, hints=None):
            threads["draft"].add(threading.current_thread().name)
            return super().draft(images, hints)

    real_merge = pipeline.merge

    def recording_merge(*args, **kwargs):
        threads["merge"].add(threading.current_thread().name)
        return real_merge(*args, **kwargs)

    monkeypatch.setattr(pipeline, "merge", recording_merge)
    metrics = Metrics()

    async def run():
        batcher = Batcher(Recording(), settings(tmp_path, batch_wait_ms=0), metrics)
        batcher.start()
        try:
            pairs = [(load_image(png(colour)), PageContext(role=role))
                     for colour, role in (("red", "informative"), ("blue", "decorative"), ("green", "informative"))]
            return await asyncio.gather(*batcher.submit(pairs))
        finally:
            await batcher.stop()

    results = asyncio.run(run())
    assert [r.alt for r in results] == ["A mostly red image.", "", "A mostly green image."]
    assert {name.split("_")[0] for name in threads["draft"]} == {"alttext-model"}
    assert {name.split("_")[0] for name in threads["merge"]} == {"alttext-merge"}
    text = metrics.render().decode()
    assert metric(text, "alttext_stage_duration_seconds_count", stage="draft") == 1
    assert metric(text, "alttext_stage_duration_seconds_count", stage="merge") == 1
