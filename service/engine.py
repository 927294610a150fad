"""What every endpoint and the job runner share: the model behind a batcher, the cache,
and turning an upload, base64 text or URL into a decoded image.

Errors come out as ``models.imageio.ImageError`` or ``service.fetch.FetchError``, whose
``code`` is the API's error code.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import io
import logging
import re
from collections.abc import Sequence

from PIL import Image

from models.base import Drafter
from models.errors import ModelError, UpstreamError
from models.imageio import ImageError, ImageTooLarge, LoadedImage, load_image
from service.batching import Batcher, new_model_thread
from service.cache import ResultCache, cache_key
from service.fetch import Fetcher, FetchError
from service.observability import Metrics
from service.pipeline import describe_batch
from service.page import PAGE_TEXT_CLEAN, PageContext
from service.result import AltResult
from service.settings import Settings

log = logging.getLogger("service.engine")
_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+(?:;[\w.+-]+=[\w.+-]+)*;base64,", re.I)


class AltTextEngine:
    def __init__(self, settings: Settings, metrics: Metrics, fetcher: Fetcher, cache: ResultCache | None,
                 drafter: Drafter | None = None) -> None:
        self.settings, self.metrics, self.fetcher, self.cache = settings, metrics, fetcher, cache
        self.drafter: Drafter | None = drafter  # kept across restarts of the app's lifespan
        self._listened: Drafter | None = None
        self.batcher: Batcher | None = None
        self.load_error: str | None = None
        self._ready: asyncio.Event | None = None
        # One thread loads, warms and runs the model, for the engine's whole life (across
        # lifespans, like the drafter): each thread that calls torch gets its own OpenMP
        # team, and an idle team left behind by warm-up slows every later call.
        self._model_thread = new_model_thread()

    # --- model -------------------------------------------------------------------------
    # Everything bound to an event loop (batcher, events) is made per lifespan, so the app
    # can be started again (test clients and fuzzers do) without stale loop state.

    @property
    def is_ready(self) -> bool:
        return self._ready is not None and self._ready.is_set()

    async def wait_ready(self) -> None:
        if self._ready is None:
            self._ready = asyncio.Event()
        await self._ready.wait()

    async def start(self) -> None:
        """Load and warm the model on the model thread (/ready says 503 meanwhile), then start batching."""
        if self._ready is None:
            self._ready = asyncio.Event()
        try:
            drafter = self.drafter or await asyncio.get_running_loop().run_in_executor(self._model_thread, self._build)
        except ModelError as exc:  # a clear one-line reason: no traceback in the log, same text on /ready
            log.error("model failed to load: %s", exc, extra={"code": exc.code, "reason": exc.reason})
            self.load_error = f"{exc.code}: {exc}"
            return
        except Exception as exc:  # keep serving /health and a clear /ready
            log.exception("model failed to load")
            self.load_error = f"{type(exc).__name__}: {exc}"
            return
        if self._listened is not drafter:  # once per drafter, though lifespans restart
            drafter.add_listener(self.metrics.upstream_call)  # remote backends report each request
            self._listened = drafter
        self.drafter = drafter
        self.batcher = Batcher(drafter, self.settings, self.metrics, model_thread=self._model_thread)
        self.batcher.start()
        self.metrics.model_ready.set(1)
        self._ready.set()
        log.info("model ready", extra={"model": drafter.model.model_dump()})

    def _build(self) -> Drafter:
        from models.registry import load_drafter

        drafter = load_drafter(self.settings.model, **self.settings.drafter_options())
        drafter.warm_up()
        # Warm the rest of the pipeline too (merge loads its language model lazily), so the
        # first caller after /ready is as fast as the next.
        buf = io.BytesIO()
        Image.new("RGB", (64, 64), "white").save(buf, "PNG")
        try:
            describe_batch(drafter, [buf.getvalue()],
                           [PageContext(caption="Warm-up photo of Leeds by Ada Lovelace")], self.settings)
        except UpstreamError as exc:
            # A remote model server that is down now may be up in a minute: /ready reports it
            # (503 until it answers) instead of the service giving up for good.
            log.warning("remote model did not answer the warm-up: %s", exc)
        return drafter

    async def upstream_health(self) -> tuple[bool, str] | None:
        """For a remote drafter: (answers, detail), checked at most every few seconds; else None."""
        if self.drafter is None:
            return None
        health = await asyncio.to_thread(self.drafter.health)
        if health is not None:
            self.metrics.upstream_up.set(1 if health[0] else 0)
        return health

    async def stop(self) -> None:
        self._ready = None
        self.metrics.model_ready.set(0)
        if self.batcher:
            await self.batcher.stop()
            self.batcher = None
        await self.fetcher.aclose()

    # --- inputs --------------------------------------------------------------------------

    async def load(self, *, data: bytes | None = None, url: str | None = None,
                   b64: str | None = None) -> LoadedImage:
        """Exactly one of ``data`` (an upload), ``url`` or ``b64`` -> a decoded image."""
        if url is not None:
            with self.metrics.time("fetch"):
                data = await self.fetcher.get(url)
        elif b64 is not None:
            data = decode_base64(b64, self.settings.max_image_bytes)
        assert data is not None
        with self.metrics.time("decode"):
            return await asyncio.to_thread(load_image, data, **self.settings.image_limits())

    # --- describing ----------------------------------------------------------------------

    async def describe(self, pairs: Sequence[tuple[LoadedImage, PageContext]], *,
                       background: bool = False) -> list[AltResult]:
        """AltResults in order: cached ones at once, the rest through the batcher."""
        assert self.drafter is not None and self.batcher is not None, "model not ready"
        dtype = self.drafter.capabilities.dtype
        keys = [cache_key(img.sha256, self.drafter.model, page, self.settings, dtype) for img, page in pairs]
        found = await asyncio.to_thread(self._lookup, keys)
        missing = [i for i, r in enumerate(found) if r is None]
        if missing:
            todo = [pairs[i] for i in missing]
            futures = await self.batcher.submit_background(todo) if background else self.batcher.submit(todo)
            try:
                fresh = await asyncio.gather(*futures)
            except BaseException:
                for f in futures:  # a timed-out caller frees its queue slots
                    f.cancel()
                raise
            for i, result in zip(missing, fresh):
                found[i] = result
            if self.cache:
                await asyncio.to_thread(self._store, [(keys[i], found[i]) for i in missing])
        return found  # type: ignore[return-value]

    async def describe_items(self, items: Sequence[dict], *,
                             background: bool = False) -> list[AltResult | ImageError | FetchError]:
        """Request items (image_url or image_base64 plus page fields) -> a result per item, in
        order; an item whose image cannot be fetched or read gets its error in its place.
        Anything else (a model failure) raises."""

        async def load(item: dict):
            source, page = split_item(item)
            return await self.load(**source), page

        loaded = await asyncio.gather(*(load(item) for item in items), return_exceptions=True)
        for value in loaded:
            if isinstance(value, BaseException) and not isinstance(value, (ImageError, FetchError)):
                raise value
        good = [i for i, value in enumerate(loaded) if not isinstance(value, BaseException)]
        out: list = list(loaded)
        if good:
            for i, result in zip(good, await self.describe([loaded[i] for i in good], background=background)):
                out[i] = result
        return out

    def _lookup(self, keys: list[str]) -> list[AltResult | None]:
        if not self.cache:
            return [None] * len(keys)
        found = [self.cache.get(k) for k in keys]
        hits = sum(r is not None for r in found)
        self.metrics.cache.labels("hit").inc(hits)
        self.metrics.cache.labels("miss").inc(len(keys) - hits)
        return found

    def _store(self, entries: list[tuple[str, AltResult]]) -> None:
        for key, result in entries:
            self.cache.put(key, result)


def decode_base64(text: str, max_bytes: int) -> bytes:
    """Plain base64 or a ``data:`` URL; the size is checked before decoding."""
    match = _DATA_URL.match(text)
    payload = re.sub(r"\s+", "", text[match.end():] if match else text)
    if len(payload) * 3 // 4 > max_bytes + 2:
        raise ImageTooLarge("bytes", f"The image is over the {max_bytes}-byte limit.")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("base64", "image_base64 is not valid base64.") from None


SOURCE_FIELDS = {"image_url": "url", "image_base64": "b64"}


def split_item(item: dict) -> tuple[dict, PageContext]:
    """A request item (image_url or image_base64 plus page fields, maybe an id) ->
    (keyword arguments for ``AltTextEngine.load``, its PageContext). An item marked
    ``PAGE_TEXT_CLEAN`` (see ``clean_item``) holds page text cleaned once already: not again."""
    source = {arg: item[field] for field, arg in SOURCE_FIELDS.items() if item.get(field) is not None}
    fields = {k: v for k, v in item.items() if k in PageContext.model_fields}
    page = PageContext.from_clean(fields) if item.get(PAGE_TEXT_CLEAN) is True else PageContext.model_validate(fields)
    return source, page


def clean_item(model: PageContext) -> dict:
    """A validated request item (its page text cleaned once) as the dict ``split_item`` and the
    job store take, marked so that nothing cleans its page text a second time."""
    return {**model.model_dump(exclude_none=True), PAGE_TEXT_CLEAN: True}
