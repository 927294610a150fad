"""Draft cache for evaluation runs: re-running with another merge setting reuses drafts.

Key: image content sha256 + model id + model revision + the drafting code (a hash of the
``models`` package's source, since the offline backend's revision names only its weight
packages and its templates live in code) (+ the page hint for backends that take a prompt,
whose drafts depend on it). Stored in one SQLite file under
``ALTTEXT_EVAL_CACHE`` (a folder; default ``~/.cache/alttext``).
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from PIL import Image

from models.base import Drafter, WrappingDrafter
from models.draft import Draft, ModelRef

ENV = "ALTTEXT_EVAL_CACHE"
FILENAME = "eval-drafts.sqlite"


def default_dir() -> Path:
    configured = os.environ.get(ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "alttext"


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Hash of the drafting code (models/**/*.py and its data files): editing it invalidates drafts."""
    import models

    root = Path(models.__file__).resolve().parent
    digest = hashlib.sha256()
    for item in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in {".py", ".txt", ".json"}):
        digest.update(str(item.relative_to(root)).encode() + b"\0" + item.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def model_fingerprint(ref: ModelRef) -> str:
    """id + revision; a local model folder without a revision adds its files' names, sizes and mtimes."""
    revision = ref.revision
    if not revision:
        path = Path(ref.id)
        if path.is_dir():
            digest = hashlib.sha256()
            for item in sorted(p for p in path.rglob("*") if p.is_file()):
                st = item.stat()
                digest.update(f"{item.relative_to(path)}:{st.st_size}:{st.st_mtime_ns};".encode())
            revision = "local:" + digest.hexdigest()[:16]
        else:
            revision = "unpinned"
    return f"{ref.backend}|{ref.id}|{revision}|code:{code_fingerprint()}"


class DraftCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS drafts (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
                         "draft TEXT NOT NULL)")
        self._db.commit()

    @classmethod
    def open(cls, folder: Path | None = None) -> DraftCache:
        return cls((folder or default_dir()) / FILENAME)

    def get_many(self, keys: Sequence[str]) -> dict[str, Draft]:
        found: dict[str, Draft] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            rows = self._db.execute(
                f"SELECT key, draft FROM drafts WHERE key IN ({','.join('?' * len(chunk))})", chunk).fetchall()
            for key, payload in rows:
                try:
                    found[key] = Draft.model_validate_json(payload)
                except ValueError:  # an older Draft shape: recompute
                    continue
        return found

    def put_many(self, items: Sequence[tuple[str, Draft]]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO drafts (key, model, draft) VALUES (?, ?, ?)",
                             [(k, d.model.id, d.model_dump_json()) for k, d in items])
        self._db.commit()

    def close(self) -> None:
        self._db.close()


class CachingDrafter(WrappingDrafter):
    """A Drafter that answers from the cache and sends only misses, batched, to the real drafter.

    ``describe_batch`` hands it the decoded PIL images; ``register`` maps each image object
    to its content hash first (LoadedImage.sha256), so keys are content, not object, based.
    """

    def __init__(self, drafter: Drafter, cache: DraftCache | None) -> None:
        super().__init__(drafter)
        self.cache = cache
        self._sha: dict[int, str] = {}
        self._fingerprint = model_fingerprint(drafter.model)
        self._uses_hints = drafter.capabilities.takes_hints  # hints are part of the key only if they matter
        self.hits = 0
        self.misses = 0

    @property
    def drafter(self) -> Drafter:
        return self.inner

    def register(self, image: Image.Image, sha256: str) -> None:
        self._sha[id(image)] = sha256

    def forget(self) -> None:
        self._sha.clear()

    def key(self, image: Image.Image, hint: str | None) -> str:
        sha = self._sha.get(id(image))
        if sha is None:
            sha = hashlib.sha256(image.tobytes()).hexdigest()
        # the same file decoded at another size (ALTTEXT_DECODE_SIDE) is drafted from other pixels
        parts = [sha, f"{image.width}x{image.height}", self._fingerprint]
        if self._uses_hints:
            # A Hint also carries the page language and the budget, which change a chat model's prompt.
            extra = f"\n{hint.lang}\n{hint.max_chars}" if hasattr(hint, "lang") else ""
            parts.append(hashlib.sha256(((hint or "") + extra).encode()).hexdigest())
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def draft(self, images: Sequence[Image.Image], hints: Sequence[str | None] | None = None) -> list[Draft]:
        hints = list(hints) if hints is not None else [None] * len(images)
        keys = [self.key(im, h) for im, h in zip(images, hints)]
        found = self.cache.get_many(keys) if self.cache else {}
        missing = [i for i, k in enumerate(keys) if k not in found]
        self.hits += len(images) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = self.drafter.draft([images[i] for i in missing], [hints[i] for i in missing])
            new = {keys[i]: d for i, d in zip(missing, fresh)}
            if self.cache:
                self.cache.put_many(list(new.items()))
            found.update(new)
        return [found[k] for k in keys]
