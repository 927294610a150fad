"""``--engine ray``: the same pipeline on a Ray cluster (a local Ray by default).

One pool of ``DescribeWorker`` actors is started per run (``--ray-concurrency`` of them) and
kept until the run ends: each loads the model once and keeps a LocalEngine (same loading,
fetching, memoised drafting and merge as ``--engine local``), so the rows are the same as the
local engine's. Each chunk of items (one checkpoint, ``--ray-chunk``) is cut into batches of
``--ray-batch-size`` that ``ray.util.ActorPool`` hands to whichever worker is free; results
come back in order, and the runner commits the chunk to the checkpoint as before, so a run
stopped at any point resumes with every item exactly once.

Drafts are shared across workers through one ``SharedDrafts`` actor (an LRU by content key):
a worker that meets an image it has not drafted asks it before drafting, and hands it what it
drafted when its batch is done, so an image drafted in one chunk is not drafted again by
another worker in a later chunk (two workers meeting the same new image at the same moment
may both draft it). The run's new drafts also go to the checkpoint, as with the local engine, and
a resumed run hands the checkpoint's drafts back to the shared actor first.

Ray starts locally unless ``RAY_ADDRESS`` names a cluster (whose workers need alttext
installed). Ray is an optional extra: ``pip install alttext[ray]``.
"""
from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Sequence

from service.backfill.engines import DraftMemo, Failure, Outcome
from service.backfill.items import Item
from service.result import AltResult
from service.settings import Settings


def _encode(outcome: Outcome) -> str:
    if isinstance(outcome, Failure):
        return json.dumps({"failure": [outcome.code, outcome.message]})
    return json.dumps({"result": outcome.model_dump(mode="json")})


def _decode(text: str) -> Outcome:
    data = json.loads(text)
    if "failure" in data:
        return Failure(*data["failure"])
    return AltResult.model_validate(data["result"])


SHARED_DRAFTS = 65536  # drafts the SharedDrafts actor keeps (and a resumed run preloads)
PRELOAD_CHUNK = 2048  # drafts per call when a resumed run hands the checkpoint's drafts over


class SharedDrafts:
    """A Ray actor: the run's drafts by content key, for every worker (an LRU, like DraftMemo)."""

    def __init__(self, size: int = SHARED_DRAFTS) -> None:
        self.memo = DraftMemo(size=size)

    def get(self, keys: list[str]) -> dict[str, str]:
        return self.memo.get(keys)

    def put(self, drafts: dict[str, str], *, new: bool = True) -> None:
        """``new=False``: drafts recalled from the checkpoint, which already holds them."""
        for key, draft in drafts.items():
            self.memo.put(key, draft, new=new)

    def take_new(self) -> dict[str, str]:
        return self.memo.take_new()


class DescribeWorker:
    """A Ray actor: loads the model once, in the constructor, and serves every batch of the run."""

    def __init__(self, settings: dict, shared=None) -> None:
        import ray

        from service.backfill.engines import LocalEngine
        from service.crawl import blocking_crawler

        cfg = Settings(_env_file=None, **settings)
        lookup = (lambda keys: ray.get(shared.get.remote(keys))) if shared is not None else None
        self.shared = shared
        self.engine = LocalEngine(cfg, crawler=blocking_crawler(cfg), memo=DraftMemo(lookup))
        self.engine.drafter.warm_up()
        # Names this model load: a new actor (and so a new load) shows up as a new id.
        self.instance = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"

    def describe(self, items: list[dict]) -> dict:
        import ray

        before = self.engine.drafted
        outcomes = self.engine.run([Item.from_dict(item) for item in items])
        new = self.engine.take_drafts()
        if new and self.shared is not None:
            ray.get(self.shared.put.remote(new))  # shared before this batch counts as done
        return {"worker": self.instance, "outcomes": [_encode(o) for o in outcomes],
                "drafted": self.engine.drafted - before}  # images this worker sent to its model


class RayEngine:
    def __init__(self, settings: Settings, *, concurrency: int = 2, batch_size: int = 16) -> None:
        try:
            import ray
            from ray.util import ActorPool
        except ImportError as exc:
            raise RuntimeError("--engine ray needs Ray: pip install 'alttext[ray]'") from exc
        self.ray = ray
        self.settings, self.concurrency, self.batch_size = settings, concurrency, batch_size
        self.drafted = 0
        self.batches_by_worker: Counter[str] = Counter()  # worker instance -> batches it described
        self._started = False
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS")
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=concurrency + 1, include_dashboard=False, log_to_driver=False,
                         object_store_memory=256 * 2**20, configure_logging=False)
            self._started = True
        worker = ray.remote(num_cpus=1)(DescribeWorker)
        config = self.settings.model_dump(mode="json")
        self.shared = ray.remote(num_cpus=0)(SharedDrafts).remote()
        self.actors = [worker.remote(config, self.shared) for _ in range(concurrency)]  # once per run
        self.pool = ActorPool(self.actors)

    @property
    def workers(self) -> set[str]:
        """The worker instances (model loads) that have described anything in this run."""
        return set(self.batches_by_worker)

    def run(self, items: Sequence[Item]) -> list[Outcome]:
        batches = [[item.to_dict() for item in items[start:start + self.batch_size]]
                   for start in range(0, len(items), self.batch_size)]
        outcomes: list[Outcome] = []
        for answer in self.pool.map(lambda actor, batch: actor.describe.remote(batch), batches):
            outcomes += [_decode(text) for text in answer["outcomes"]]
            self.drafted += answer["drafted"]
            self.batches_by_worker[answer["worker"]] += 1
        return outcomes

    def take_drafts(self) -> dict[str, str]:
        return self.ray.get(self.shared.take_new.remote())  # into the checkpoint, as the local engine's

    def recall(self, store) -> None:
        """The checkpoint lives with the driver, out of the workers' reach (a cluster's workers
        cannot open its SQLite file), so a resumed run hands its most recent drafts, as many as the
        shared memo keeps, to the SharedDrafts actor before any batch: a copy of an image done
        before the stop is not drafted again."""
        drafts = list(store.recent_drafts(SHARED_DRAFTS).items())[::-1]  # oldest first: the LRU keeps the newest
        for start in range(0, len(drafts), PRELOAD_CHUNK):
            self.ray.get(self.shared.put.remote(dict(drafts[start:start + PRELOAD_CHUNK]), new=False))

    def close(self) -> None:
        for actor in [*self.actors, self.shared]:
            self.ray.kill(actor)
        self.actors = []
        if self._started:
            self.ray.shutdown()
