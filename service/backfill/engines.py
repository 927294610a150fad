"""Engines turn a batch of items into AltResults (or per-item failures), in order.

- ``LocalEngine``: the model in this process, through ``service.pipeline.describe_batch``
  (the API's path), with drafts memoised by image content hash.
- ``ServerEngine``: a running ``alttext serve``, through ``POST /v1/alt-text:batch``.
- ``RayEngine`` (``service.backfill.ray_engine``): a pool of Ray actors, started once per run,
  that each hold one LocalEngine.
"""
from __future__ import annotations

import base64
import hashlib
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes

from models.base import Drafter, WrappingDrafter
from models.draft import Draft
from models.errors import ImageError
from models.imageio import LoadedImage, load_image
from service.backfill.items import Item
from service.fetch import FetchError
from service.result import AltResult
from service.settings import Settings


@dataclass(frozen=True)
class Failure:
    code: str
    message: str


Outcome = AltResult | Failure


def read_image(item: Item, settings: Settings, crawler=None) -> LoadedImage:
    """The item's pixels under the API's limits. Raises ImageError or FetchError."""
    limits = settings.image_limits()
    if item.data is not None:
        return load_image(item.data.encode("utf-8"), **limits)
    src = item.src
    if src.startswith("data:"):
        head, _, payload = src.partition(",")
        try:
            data = base64.b64decode(payload, validate=False) if head.endswith(";base64") else unquote_to_bytes(payload)
        except ValueError as exc:
            raise FetchError("invalid_image", "data_url", "The data: URL is not valid base64.") from exc
        return load_image(data, **limits)
    if src.startswith(("http://", "https://")):
        if crawler is None:
            raise FetchError("fetch_blocked", "no_fetcher", "Remote images are not fetched in this run.")
        return load_image(crawler.image(src), **limits)
    return load_image(Path(src), **limits)


def failure(exc: Exception) -> Failure:
    return Failure(getattr(exc, "code", "invalid_image"), str(exc))


class DraftMemo:
    """Drafts by image content (and page hint, for backends that read hints): an LRU in memory
    over the checkpoint's table, so a duplicate image is drafted once per run."""

    def __init__(self, lookup=None, size: int = 4096) -> None:
        self._lookup = lookup  # keys -> {key: draft json} from the checkpoint
        self._lru: OrderedDict[str, str] = OrderedDict()
        self.size = size
        self.new: dict[str, str] = {}  # drafted since the last take_new()

    def get(self, keys: Sequence[str]) -> dict[str, str]:
        found = {k: self._lru[k] for k in keys if k in self._lru}
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        if missing and self._lookup is not None:
            found.update(self._lookup(missing))
        return found

    def put(self, key: str, draft_json: str, *, new: bool = True) -> None:
        """``new=False``: a draft recalled from the checkpoint, which already holds it."""
        self._lru[key] = draft_json
        self._lru.move_to_end(key)
        while len(self._lru) > self.size:
            self._lru.popitem(last=False)
        if new:
            self.new[key] = draft_json

    def take_new(self) -> dict[str, str]:
        new, self.new = self.new, {}
        return new

    def recall_from(self, lookup) -> None:
        """Ask ``lookup`` (keys -> {key: draft json}) for keys not in memory, unless one is set."""
        self._lookup = self._lookup or lookup


class _MemoDrafter(WrappingDrafter):
    """Hands describe_batch remembered drafts and drafts only the images it has not seen
    (each distinct one once, even within a batch)."""

    def __init__(self, inner: Drafter, keys: dict[int, str], memo: DraftMemo) -> None:
        super().__init__(inner)
        self.keys, self.memo = keys, memo
        self.drafted = 0

    def draft(self, images, hints=None):
        hints = list(hints) if hints is not None else [None] * len(images)
        keys = [self.keys[id(image)] for image in images]
        known = self.memo.get(keys)
        todo: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key not in known and key not in todo:
                todo[key] = i
        if todo:
            fresh = self.inner.draft([images[i] for i in todo.values()], [hints[i] for i in todo.values()])
            self.drafted += len(fresh)
            for key, draft in zip(todo, fresh):
                known[key] = draft.model_dump_json()
                self.memo.put(key, known[key])
        return [Draft.model_validate_json(known[key]) for key in keys]


class LocalEngine:
    def __init__(self, settings: Settings, drafter: Drafter | None = None, crawler=None, memo: DraftMemo | None = None):
        from models.registry import load_drafter

        self.settings = settings
        self.drafter = drafter or load_drafter(settings.model, **settings.drafter_options())
        self.crawler = crawler
        self.memo = memo or DraftMemo()
        self.drafted = 0  # images actually sent to the model

    def memo_key(self, image: LoadedImage, item: Item) -> str:
        from service.pipeline import page_hint

        model = self.drafter.model
        key = f"{image.sha256}:{model.id}@{model.revision}"
        if self.drafter.capabilities.takes_hints:
            hint = page_hint(item.context(), self.settings)
            key += ":" + hashlib.sha256(hint.encode()).hexdigest()[:16]
        return key

    def run(self, items: Sequence[Item]) -> list[Outcome]:
        from service.pipeline import describe_batch

        outcomes: list[Outcome | None] = [None] * len(items)
        loaded: list[tuple[int, LoadedImage]] = []
        for i, item in enumerate(items):
            try:
                loaded.append((i, read_image(item, self.settings, self.crawler)))
            except (ImageError, FetchError) as exc:
                outcomes[i] = failure(exc)
        if loaded:
            keys = {id(li.image): self.memo_key(li, items[i]) for i, li in loaded}
            drafter = _MemoDrafter(self.drafter, keys, self.memo)
            results = describe_batch(drafter, [li for _, li in loaded], [items[i].context() for i, _ in loaded],
                                     self.settings)
            self.drafted += drafter.drafted
            for (i, _), result in zip(loaded, results):
                outcomes[i] = result
        return outcomes  # type: ignore[return-value]

    def take_drafts(self) -> dict[str, str]:
        return self.memo.take_new()

    def recall(self, store) -> None:
        """Reuse drafts an earlier run of this backfill kept in its checkpoint (``store``): after a
        resume, a copy of an image done before is not drafted again."""
        self.memo.recall_from(store.drafts)

    def close(self) -> None:
        pass


class ServerEngine:
    """Sends batches to ``POST /v1/alt-text:batch`` of a running ``alttext serve``. Local files
    go as base64; URLs go as image_url, fetched by the server under its own SSRF rules.
    429 and 503 are retried after ``Retry-After``; other HTTP failures stop the run (resumable)."""

    def __init__(self, url: str, api_key: str | None = None, *, batch_items: int = 32, timeout_s: float = 120.0,
                 retries: int = 8, settings: Settings | None = None) -> None:
        import httpx

        self.url = url.rstrip("/") + "/v1/alt-text:batch"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(headers=headers, timeout=timeout_s, trust_env=False)
        self.batch_items, self.retries = batch_items, retries
        self.settings = settings
        self.drafted = 0

    def _payload(self, item: Item) -> dict:
        body: dict = {"id": item.id[:255], **{k: v for k, v in item.page.items() if v is not None}}
        if self.settings is not None and "max_chars" not in body:
            body["max_chars"] = self.settings.max_chars
        if item.data is not None:
            body["image_base64"] = base64.b64encode(item.data.encode()).decode()
        elif item.src.startswith(("http://", "https://")):
            body["image_url"] = item.src
        elif item.src.startswith("data:"):
            body["image_base64"] = item.src
        else:
            limit = self.settings.max_image_bytes if self.settings else 20 * 2**20
            path = Path(item.src)
            if not path.is_file():
                raise FileNotFoundError(item.src)
            if path.stat().st_size > limit:
                raise OverflowError(item.src)
            body["image_base64"] = base64.b64encode(path.read_bytes()).decode()
        return body

    def run(self, items: Sequence[Item]) -> list[Outcome]:
        out: list[Outcome] = []
        for start in range(0, len(items), self.batch_items):
            out += self._batch(items[start:start + self.batch_items])
        return out

    def _batch(self, items: Sequence[Item]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(items)
        payload, index = [], []
        for i, item in enumerate(items):
            try:
                payload.append(self._payload(item))
                index.append(i)
            except FileNotFoundError:
                outcomes[i] = Failure("not_found", f"No such file: {item.src!r}.")
            except OverflowError:
                outcomes[i] = Failure("image_too_large", f"{item.src} is over the byte limit.")
        if payload:
            answer = self._post({"items": payload})
            for result in answer["results"]:
                i = index[result["index"]]
                if result["status"] == "ok":
                    outcomes[i] = AltResult.model_validate(result["result"])
                    self.drafted += 1
                else:
                    err = result.get("error") or {}
                    outcomes[i] = Failure(err.get("code", "fetch_failed"), err.get("message", "failed"))
        return outcomes  # type: ignore[return-value]

    def _post(self, body: dict) -> dict:
        import httpx

        for attempt in range(self.retries + 1):
            try:
                response = self.client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                if attempt == self.retries:
                    raise RuntimeError(f"The server at {self.url} could not be reached: {exc}") from exc
                time.sleep(min(2 ** attempt, 30))
                continue
            if response.status_code in (429, 503) and attempt < self.retries:
                time.sleep(min(float(response.headers.get("retry-after", "1") or 1), 60))
                continue
            if response.status_code != 200:
                try:
                    err = response.json()["error"]
                    detail = f"{err['code']}: {err['message']}"
                except Exception:
                    detail = response.text[:200]
                raise RuntimeError(f"The server answered HTTP {response.status_code} ({detail}).")
            return response.json()
        raise RuntimeError("The server stayed busy; run the same command again to resume.")

    def take_drafts(self) -> dict[str, str]:
        return {}

    def recall(self, store) -> None:
        """The server keeps its own result cache; nothing to reuse here."""

    def close(self) -> None:
        self.client.close()
