"""Dynamic batching across concurrent requests, in the manner of infinity's batch handler.

Requests put (image, page) pairs on a bounded queue and await a future. One loop takes
up to ``max_batch`` pairs, waiting at most ``max_wait_s`` for a batch to fill when the
model is idle (while it is busy the queue fills by itself), and runs only the draft
stage, ``drafter.draft``, in a single model thread: backends are not thread-safe. The
merge stage (page context, spaCy) runs in its own thread, so the model can start on the
next batch meanwhile. Interactive work always goes first; background work (jobs) waits
for room instead of being refused.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from models.base import Drafter
from models.draft import Draft
from models.errors import AltTextError
from models.imageio import LoadedImage
from service.observability import Metrics
from service.page import PageContext
from service.pipeline import DraftWork, draft_work, merge_stage
from service.settings import Settings

log = logging.getLogger("service.batching")


class Overloaded(AltTextError):
    """The model's queue is full: 503 with Retry-After."""

    code = "overloaded"

    def __init__(self, retry_after: int) -> None:
        super().__init__("queue_full", "Too many images are waiting; retry shortly.",
                         headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


@dataclass(eq=False)
class _Work:
    image: LoadedImage
    page: PageContext
    future: asyncio.Future


def new_model_thread() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="alttext-model")


def batch_size_for(drafter: Drafter, settings: Settings) -> int:
    """Images per model call: ALTTEXT_BATCH_SIZE when it is set, else the batch size the backend
    declares it prefers (``Capabilities.batch_size``), within the setting's own bounds."""
    if "batch_size" in settings.model_fields_set:
        return settings.batch_size
    preferred = drafter.capabilities.batch_size
    bounds = {k: getattr(m, k) for m in type(settings).model_fields["batch_size"].metadata
              for k in ("ge", "le") if getattr(m, k, None) is not None}
    return min(max(preferred, bounds.get("ge", 1)), bounds.get("le", preferred))


class Batcher:
    def __init__(self, drafter: Drafter, settings: Settings, metrics: Metrics,
                 model_thread: ThreadPoolExecutor | None = None) -> None:
        self.drafter, self.settings, self.metrics = drafter, settings, metrics
        self.max_batch, self.max_wait_s = batch_size_for(drafter, settings), settings.batch_wait_ms / 1000
        self.queue_size = settings.queue_size
        self._interactive: deque[_Work] = deque()
        self._background: deque[_Work] = deque()
        self._wake = asyncio.Event()
        self._room = asyncio.Condition()
        # The thread that loaded and warmed the model should run it too (``model_thread``, owned
        # by the caller): torch keeps an OpenMP thread team per calling thread, and a second
        # live team competes with the first for the same cores.
        self._owns_model_thread = model_thread is None
        self._model_thread = model_thread or new_model_thread()
        # spaCy pipelines are not guaranteed thread-safe either: merges run one at a time too.
        self._merge_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alttext-merge")
        self._merging: set[asyncio.Task] = set()
        self._batch_seconds = 1.0  # moving estimate, for Retry-After
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="alttext-batcher")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for task in list(self._merging):
            task.cancel()
        await asyncio.gather(*self._merging, return_exceptions=True)
        for work in (*self._interactive, *self._background):
            work.future.cancel()
        if self._owns_model_thread:
            self._model_thread.shutdown(wait=False, cancel_futures=True)
        self._merge_thread.shutdown(wait=False, cancel_futures=True)

    def submit(self, pairs: Sequence[tuple[LoadedImage, PageContext]]) -> list[asyncio.Future]:
        """Queue interactive work, all or nothing; Overloaded when the queue has no room."""
        if len(self._interactive) + len(pairs) > self.queue_size:
            raise Overloaded(self.retry_after())
        works = [_Work(img, page, asyncio.get_running_loop().create_future()) for img, page in pairs]
        self._interactive.extend(works)
        self._changed()
        return [w.future for w in works]

    async def submit_background(self, pairs: Sequence[tuple[LoadedImage, PageContext]]) -> list[asyncio.Future]:
        """Queue background work, waiting for room (memory stays bounded by one batch or two)."""
        futures = []
        for img, page in pairs:
            async with self._room:
                await self._room.wait_for(lambda: len(self._background) < 2 * self.max_batch)
                work = _Work(img, page, asyncio.get_running_loop().create_future())
                self._background.append(work)
            futures.append(work.future)
            self._changed()
        return futures

    def retry_after(self) -> int:
        batches = math.ceil((len(self._interactive) + 1) / self.max_batch)
        return max(1, math.ceil(batches * self._batch_seconds))

    def _changed(self) -> None:
        self.metrics.queue_depth.labels("interactive").set(len(self._interactive))
        self.metrics.queue_depth.labels("background").set(len(self._background))
        self._wake.set()

    def _take(self) -> list[_Work]:
        batch: list[_Work] = []
        for queue in (self._interactive, self._background):
            while queue and len(batch) < self.max_batch:
                work = queue.popleft()
                if not work.future.done():  # a timed-out request is not worth a model call
                    batch.append(work)
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._interactive and not self._background:
                self._wake.clear()
                await self._wake.wait()
            if self.max_wait_s and len(self._interactive) + len(self._background) < self.max_batch:
                await asyncio.sleep(self.max_wait_s)
            batch = self._take()
            self._changed()
            async with self._room:
                self._room.notify_all()
            if not batch:
                continue
            work = draft_work([w.image for w in batch], [w.page for w in batch], self.settings)
            start = time.perf_counter()
            try:
                drafts = await loop.run_in_executor(self._model_thread, self._draft, work)
            except Exception as exc:  # the whole call failed: every waiter learns why
                log.exception("model batch of %d failed", len(batch))
                _fail(batch, exc)
                continue
            finally:
                elapsed = time.perf_counter() - start
                self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * elapsed
            self.metrics.batch_size.observe(len(batch))
            self.metrics.stage.labels("draft").observe(elapsed)
            task = asyncio.create_task(self._merge(batch, drafts), name="alttext-merge")
            self._merging.add(task)
            task.add_done_callback(self._merging.discard)

    def _draft(self, work: DraftWork) -> list[Draft | None]:
        """The only thing the model thread runs."""
        return work.place(self.drafter.draft(work.images, work.hints) if work.wanted else [])

    async def _merge(self, batch: list[_Work], drafts: list[Draft | None]) -> None:
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            results = await loop.run_in_executor(self._merge_thread, merge_stage, drafts,
                                                 [w.page for w in batch], self.settings)
        except Exception as exc:
            log.exception("merge of a batch of %d failed", len(batch))
            _fail(batch, exc)
            return
        finally:
            self.metrics.stage.labels("merge").observe(time.perf_counter() - start)
        for work, result in zip(batch, results):
            if not work.future.done():
                work.future.set_result(result)


def _fail(batch: list[_Work], exc: BaseException) -> None:
    for work in batch:
        if not work.future.done():
            work.future.set_exception(exc)
