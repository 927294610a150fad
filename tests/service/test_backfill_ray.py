"""--engine ray on a local Ray with two workers: the local engine's rows, one model load per
worker for the whole run (not per chunk), an image drafted once across workers and chunks, and
a stopped run resumes with every item once.
One local Ray serves the whole module; each engine kills its own actors when it closes."""
from __future__ import annotations

import os

import pytest

from service.backfill.runner import BackfillOptions, run
from tests.support.backfill import backfill, read_rows, settings, write_images

try:
    import ray
except ImportError:  # an optional extra; the dev set-up installs it, so CI must have it
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("ray is not installed (pip install 'alttext[ray]')", allow_module_level=True)

COLOURS = ["red", "blue", "red", "green", "yellow", "blue", "grey", "black", "purple", "orange", "red", "white"]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, object_store_memory=256 * 2**20,
             configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def site(tmp_path):
    """12 images (3 reds, 2 blues) and one file that is not an image; the local engine's rows."""
    write_images(tmp_path / "imgs", {f"{i:02d}.png": colour for i, colour in enumerate(COLOURS)})
    (tmp_path / "imgs" / "05-junk.png").write_bytes(b"nope")
    _, local, _ = backfill(tmp_path / "imgs", tmp_path / "local.jsonl")
    return tmp_path / "imgs", local


def ray_run(source, out, engines, *, chunk, stop_after=None, batch_size=2):
    from service.backfill.ray_engine import RayEngine

    class Stopping(RayEngine):
        def run(self, items):
            if stop_after is not None and sum(self.batches_by_worker.values()) >= stop_after:
                raise KeyboardInterrupt("stopped mid-run")
            return super().run(items)

    def make():
        engines.append(Stopping(settings(), concurrency=2, batch_size=batch_size))
        return engines[-1]

    return run(BackfillOptions(source=str(source), out=out, progress="off", batch_size=chunk), settings(), make)


def test_ray_rows_equal_local_rows_with_one_model_load_per_worker(site, tmp_path):
    source, local = site
    engines = []
    # 13 items in chunks of 4: four checkpoints, each cut into batches of 2 for two workers.
    summary = ray_run(source, tmp_path / "ray.jsonl", engines, chunk=4)
    assert read_rows(tmp_path / "ray.jsonl") == local
    assert summary.items == 13 and summary.decisions == {"fill": 12, "error": 1}
    (engine,) = engines
    assert sum(engine.batches_by_worker.values()) == 7  # 2 + 2 + 2 + 1 batches of at most 2 items
    # Each worker instance is one model load: two for the whole run, not two per chunk (eight).
    assert len(engine.workers) == 2
    assert engine.actors == []  # closed: the actors were killed with the run


def test_ray_run_stopped_between_chunks_resumes_with_every_item_once(site, tmp_path):
    source, local = site
    out = tmp_path / "ray.jsonl"
    engines = []
    with pytest.raises(KeyboardInterrupt):
        ray_run(source, out, engines, chunk=4, stop_after=4)  # two chunks committed, then stopped
    assert len(read_rows(out)) == 8
    summary = ray_run(source, out, engines, chunk=4)
    assert read_rows(out) == local
    assert summary.items == 13 and summary.new == 5
    assert sum(engines[-1].batches_by_worker.values()) == 3  # only what was not done: 2 + 1 batches


def test_an_image_drafted_by_one_worker_is_not_drafted_again_by_the_other(tmp_path):
    import sqlite3

    from service.backfill.runner import checkpoint_path

    colours = ["red", "blue", "green", "yellow", "grey", "black"]
    write_images(tmp_path / "imgs", {f"{part}-{i}.png": colour for part in "ab" for i, colour in enumerate(colours)})
    engines = []
    # Chunk one: six new images, one per call, spread over both workers; chunk two: the same six
    # under other names, in whatever order the free workers take them.
    summary = ray_run(tmp_path / "imgs", tmp_path / "ray.jsonl", engines, chunk=6, batch_size=1)
    assert summary.items == 12 and summary.decisions == {"fill": 12}
    assert len(engines[0].workers) == 2
    assert summary.drafted == 6  # each distinct image once, whichever worker met its copy
    with sqlite3.connect(checkpoint_path(tmp_path / "ray.jsonl")) as db:  # and kept, as the local engine does
        assert db.execute("SELECT count(*) FROM drafts").fetchone()[0] == 6


def test_a_resumed_run_does_not_draft_again_what_it_drafted_before_the_stop(tmp_path):
    colours = ["red", "blue", "green", "yellow", "grey", "black"]
    write_images(tmp_path / "imgs", {f"{part}-{i}.png": colour for part in "ab" for i, colour in enumerate(colours)})
    out, engines = tmp_path / "ray.jsonl", []
    with pytest.raises(KeyboardInterrupt):  # a-0..a-5 drafted and committed, then stopped
        ray_run(tmp_path / "imgs", out, engines, chunk=6, stop_after=3)
    assert len(read_rows(out)) == 6
    summary = ray_run(tmp_path / "imgs", out, engines, chunk=6)
    # b-0..b-5 are copies of what the first run drafted: the workers, which cannot read the
    # driver's checkpoint, get its drafts from the shared actor instead of the model.
    assert summary.new == 6 and summary.drafted == 0
    assert [row["new_alt"] for row in read_rows(out)[6:]] == [row["new_alt"] for row in read_rows(out)[:6]]
