"""The batcher gives the model thread only drafter.draft; merging runs on its own thread."""
from __future__ import annotations

import asyncio
import threading

from models.base import Capabilities
from models.debug import DebugDrafter
from models.imageio import load_image
from service import pipeline
from service.batching import Batcher, batch_size_for
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


def test_the_model_is_loaded_warmed_and_run_on_one_thread(tmp_path, monkeypatch):
    """torch keeps an OpenMP thread team per thread that calls it: warming the model on one
    thread and running it on another leaves two teams fighting for the cores. Loading,
    warm-up and every later draft happen on the same model thread, across app restarts."""
    from models import registry
    from service.engine import AltTextEngine
    from service.fetch import Fetcher

    seen: dict[str, set[int]] = {"load": set(), "warm_up": set(), "draft": set()}

    class Recording(ColourDrafter):
        def warm_up(self):
            seen["warm_up"].add(threading.get_ident())

        def draft(self, images, hints=None):
            seen["draft"].add(threading.get_ident())
            return super().draft(images, hints)

    def load(name, **options):
        seen["load"].add(threading.get_ident())
        return Recording()

    monkeypatch.setattr(registry, "load_drafter", load)
    engine = AltTextEngine(settings(tmp_path, batch_wait_ms=0), Metrics(), Fetcher(), None)

    async def lifespan():
        await engine.start()
        assert engine.is_ready, engine.load_error
        try:
            [result] = await engine.describe([(load_image(png("red")), PageContext())])
            return result
        finally:
            await engine.stop()

    assert asyncio.run(lifespan()).alt == "A mostly red image."
    assert asyncio.run(lifespan()).alt == "A mostly red image."  # a restarted lifespan keeps the thread
    assert len(seen["load"]) == 1 and len(seen["warm_up"]) == 1
    assert seen["draft"] == seen["warm_up"] == seen["load"]
    assert threading.get_ident() not in seen["draft"]


class _PrefersThree(ColourDrafter):
    capabilities = Capabilities(batch_size=3)


def _batches(tmp_path, **overrides) -> list[int]:
    drafter = _PrefersThree()

    async def run():
        batcher = Batcher(drafter, settings(tmp_path, batch_wait_ms=0, **overrides), Metrics())
        batcher.start()
        try:
            await asyncio.gather(*batcher.submit([(load_image(png("red")), PageContext()) for _ in range(7)]))
        finally:
            await batcher.stop()

    asyncio.run(run())
    return drafter.batches


def test_the_backend_batch_size_applies_unless_alttext_batch_size_is_set(tmp_path, monkeypatch):
    monkeypatch.delenv("ALTTEXT_BATCH_SIZE", raising=False)
    assert _batches(tmp_path) == [3, 3, 1]  # what the backend declares it prefers
    assert _batches(tmp_path, batch_size=5) == [5, 2]  # the operator's setting wins
    monkeypatch.setenv("ALTTEXT_BATCH_SIZE", "4")
    assert _batches(tmp_path) == [4, 3]
    assert batch_size_for(DebugDrafter(), settings(tmp_path, batch_size=2)) == 2
    monkeypatch.delenv("ALTTEXT_BATCH_SIZE")
    assert batch_size_for(DebugDrafter(), settings(tmp_path)) == DebugDrafter.capabilities.batch_size
