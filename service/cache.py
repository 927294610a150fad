"""Result cache: the same image, model, policy and page context give the same AltResult.

The key covers everything the answer depends on: image content hash, model id,
revision and backend, merge POLICY_VERSION, the page context and the merge settings.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from models.draft import ModelRef
from service.db import cache_entries
from service.merge import POLICY_VERSION
from service.page import PageContext
from service.result import AltResult
from service.settings import Settings

PRUNE_EVERY = 500  # puts between size checks


def cache_key(image_sha256: str, model: ModelRef, page: PageContext, settings: Settings,
              dtype: str | None = None) -> str:
    """``dtype``: the precision a local neural model runs in (bfloat16 and float32 drafts can
    differ, and ALTTEXT_DTYPE=float32 must give float32's drafts back); None leaves it out."""
    material = {
        "image": image_sha256,
        "model": model.model_dump(mode="json") | ({"dtype": dtype} if dtype else {}),
        "policy": POLICY_VERSION,
        "page": page.model_dump(mode="json"),
        "merge": [settings.max_chars, settings.review_below, settings.nlp],
        # a large JPEG is drafted from a smaller decode when this is set (models.imageio)
        "decode_side": settings.decode_side,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class ResultCache:
    def __init__(self, db: Engine, max_entries: int = 100_000) -> None:
        self.db, self.max_entries = db, max_entries
        self._puts = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> AltResult | None:
        with self.db.connect() as conn:
            row = conn.execute(select(cache_entries.c.result).where(cache_entries.c.key == key)).first()
        return AltResult.model_validate_json(row[0]) if row else None

    def put(self, key: str, result: AltResult) -> None:
        try:
            with self.db.begin() as conn:
                conn.execute(insert(cache_entries).values(key=key, result=result.model_dump_json(),
                                                          created_at=time.time()))
        except IntegrityError:
            return  # a concurrent request stored the same answer
        with self._lock:
            self._puts += 1
            due = self._puts % PRUNE_EVERY == 0
        if due:
            self.prune()

    def prune(self) -> None:
        """Drop the oldest entries beyond ``max_entries``."""
        with self.db.begin() as conn:
            cutoff = conn.execute(select(cache_entries.c.created_at).order_by(cache_entries.c.created_at.desc())
                                  .offset(self.max_entries).limit(1)).scalar()
            if cutoff is not None:
                conn.execute(delete(cache_entries).where(cache_entries.c.created_at <= cutoff))
