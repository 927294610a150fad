"""``--engine ray``: the same pipeline on Ray Data.

Each chunk of items (one checkpoint, ``--ray-chunk``) becomes a Ray dataset; ``map_batches``
runs ``DescribeWorker`` actors, each of which loads the model once (per chunk) and keeps a LocalEngine
(same loading, fetching, memoised drafting and merge as ``--engine local``), so the rows are
the same as the local engine's. Ray starts locally unless ``RAY_ADDRESS`` names a cluster
(whose workers need alttext installed). Ray is an optional extra: ``pip install alttext[ray]``.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence

from service.backfill.engines import Failure, Outcome
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


class DescribeWorker:
    """A Ray actor: one model per worker process, loaded once in the constructor."""

    def __init__(self, settings: dict) -> None:
        from service.backfill.engines import LocalEngine
        from service.crawl import blocking_crawler

        cfg = Settings(_env_file=None, **settings)
        self.engine = LocalEngine(cfg, crawler=blocking_crawler(cfg))
        self.engine.drafter.warm_up()

    def __call__(self, batch: dict) -> dict:
        items = [Item.from_dict(json.loads(text)) for text in batch["item"]]
        before = self.engine.drafted
        outcomes = self.engine.run(items)
        drafted = [0] * len(items)
        drafted[0] = self.engine.drafted - before  # images this worker sent to its model
        return {"index": batch["index"], "outcome": [_encode(o) for o in outcomes], "drafted": drafted}


class RayEngine:
    def __init__(self, settings: Settings, *, concurrency: int = 2, batch_size: int = 16) -> None:
        try:
            import ray
        except ImportError as exc:
            raise RuntimeError("--engine ray needs Ray: pip install 'alttext[ray]'") from exc
        self.ray = ray
        self.settings, self.concurrency, self.batch_size = settings, concurrency, batch_size
        self.drafted = 0
        self._started = False
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS")
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=concurrency + 1, include_dashboard=False, log_to_driver=False,
                         object_store_memory=256 * 2**20, configure_logging=False)
            self._started = True
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False

    def run(self, items: Sequence[Item]) -> list[Outcome]:
        rows = [{"index": i, "item": json.dumps(item.to_dict())} for i, item in enumerate(items)]
        ds = self.ray.data.from_items(rows)
        out = ds.map_batches(
            DescribeWorker,
            fn_constructor_kwargs={"settings": self.settings.model_dump(mode="json")},
            compute=self.ray.data.ActorPoolStrategy(size=self.concurrency),
            batch_size=self.batch_size,
            batch_format="numpy",
            num_cpus=1,
        )
        outcomes: list[Outcome | None] = [None] * len(items)
        for row in out.iter_rows():
            outcomes[int(row["index"])] = _decode(row["outcome"])
            self.drafted += int(row["drafted"])
        return outcomes  # type: ignore[return-value]

    def take_drafts(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()
