"""Dynamic batching across concurrent requests, in the manner of infinity's batch handler.

Requests put (image, page) pairs on a bounded queue and await a future. One loop takes
up to ``max_batch`` pairs, waiting at most ``max_wait_s`` for a batch to fill when the
model is idle (while it is busy the queue fills by itself), and runs the one pipeline
on them in a single model thread: backends are not thread-safe. Interactive work always
goes first; background work (jobs) waits for room instead of being refused.
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

from PIL import Image

from models.base import Capabilities, Drafter
from models.draft import Draft, ModelRef
from models.errors import AltTextError
from models.imageio import LoadedImage
from service.observability import Metrics
from service.pipeline import describe_batch
from service.page import PageContext
from service.result import AltResult
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


class _TimedDrafter(Drafter):
    """The real drafter, timed, so the draft stage is measured apart from merge."""

    def __init__(self, inner: Drafter) -> None:
        self.inner, self.seconds = inner, 0.0

    @property
    def model(self) -> ModelRef:
        return self.inner.model

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    def draft(self, images: Sequence[Image.Image], hints: Sequence[str | None] | None = None) -> list[Draft]:
        start = time.perf_counter()
        try:
            return self.inner.draft(images, hints)
        finally:
            self.seconds = time.perf_counter() - start


class Batcher:
    def __init__(self, drafter: Drafter, settings: Settings, metrics: Metrics) -> None:
        self.drafter, self.settings, self.metrics = _TimedDrafter(drafter), settings, metrics
        self.max_batch, self.max_wait_s = settings.batch_size, settings.batch_wait_ms / 1000
        self.queue_size = settings.queue_size
        self._interactive: deque[_Work] = deque()
        self._background: deque[_Work] = deque()
        self._wake = asyncio.Event()
        self._room = asyncio.Condition()
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alttext-model")
        self._batch_seconds = 1.0  # moving estimate, for Retry-After
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="alttext-batcher")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for work in (*self._interactive, *self._background):
            work.future.cancel()
        self._model_thread.shutdown(wait=False, cancel_futures=True)

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
            start = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._model_thread, self._run, batch)
            except Exception as exc:  # the whole call failed: every waiter learns why
                log.exception("model batch of %d failed", len(batch))
                for work in batch:
                    if not work.future.done():
                        work.future.set_exception(exc)
                continue
            finally:
                elapsed = time.perf_counter() - start
                self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * elapsed
            for work, result in zip(batch, results):
                if not work.future.done():
                    work.future.set_result(result)

    def _run(self, batch: list[_Work]) -> list[AltResult]:
        start = time.perf_counter()
        results = describe_batch(self.drafter, [w.image for w in batch], [w.page for w in batch], self.settings)
        total = time.perf_counter() - start
        self.metrics.batch_size.observe(len(batch))
        self.metrics.stage.labels("draft").observe(self.drafter.seconds)
        self.metrics.stage.labels("merge").observe(max(0.0, total - self.drafter.seconds))
        return results
