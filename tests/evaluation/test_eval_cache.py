from __future__ import annotations

from PIL import Image

from evaluation.cache import CachingDrafter, DraftCache, model_fingerprint
from models.base import Capabilities, Drafter
from models.draft import Draft, ModelRef


class FakeDrafter(Drafter):
    def __init__(self, backend: str = "offline", revision: str | None = "r1", takes_hints: bool = False) -> None:
        self._model = ModelRef(id="fake", revision=revision, backend=backend)
        self._capabilities = Capabilities(takes_hints=takes_hints)
        self.calls: list[int] = []

    @property
    def model(self) -> ModelRef:
        return self._model

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def draft(self, images, hints=None):
        self.calls.append(len(images))
        return [Draft(text=f"{im.getpixel((0, 0))} {hint or ''}".strip(), confidence=0.5, model=self._model,
                      latency_ms=1.0) for im, hint in zip(images, hints or [None] * len(images))]


def test_drafts_are_cached_by_content_model_and_revision(tmp_path):
    cache = DraftCache.open(tmp_path)
    red, blue = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")
    inner = FakeDrafter()
    drafter = CachingDrafter(inner, cache)
    first = drafter.draft([red, blue])
    assert inner.calls == [2] and (drafter.hits, drafter.misses) == (0, 2)

    # A fresh process: same content (a new object), same model -> nothing recomputed.
    again = CachingDrafter(FakeDrafter(), DraftCache.open(tmp_path))
    assert [d.text for d in again.draft([Image.new("RGB", (8, 8), "blue"), red.copy()])] == [
        first[1].text, first[0].text]
    assert again.drafter.calls == [] and again.hits == 2

    # Only the misses go to the drafter, in one batch, and the order is kept.
    green = Image.new("RGB", (8, 8), "green")
    mixed = CachingDrafter(FakeDrafter(), DraftCache.open(tmp_path))
    out = mixed.draft([red, green, blue])
    assert mixed.drafter.calls == [1] and out[1].text.startswith("(0, 128, 0)")

    # Another revision is another model.
    other = CachingDrafter(FakeDrafter(revision="r2"), DraftCache.open(tmp_path))
    other.draft([red])
    assert other.drafter.calls == [1]


def test_registered_hash_is_the_key_and_hints_count_for_promptable_backends(tmp_path):
    cache = DraftCache.open(tmp_path)
    red = Image.new("RGB", (8, 8), "red")
    offline = CachingDrafter(FakeDrafter(), cache)
    offline.register(red, "a" * 64)
    assert offline.key(red, "caption one") == offline.key(red, "caption two")
    prompted = CachingDrafter(FakeDrafter(backend="transformers", takes_hints=True), cache)
    prompted.register(red, "a" * 64)
    assert prompted.key(red, "caption one") != prompted.key(red, "caption two")
    prompted.draft([red, red], ["one", "two"])
    assert prompted.drafter.calls == [2]


def test_unpinned_local_model_folder_is_fingerprinted_by_its_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    ref = ModelRef(id=str(tmp_path), revision=None, backend="transformers")
    before = model_fingerprint(ref)
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    assert model_fingerprint(ref) != before and "local:" in before
    assert "|unpinned|" in model_fingerprint(ModelRef(id="org/name", revision=None, backend="transformers"))


def test_a_change_to_the_drafting_code_invalidates_drafts(tmp_path, monkeypatch):
    from evaluation import cache as cache_module

    red = Image.new("RGB", (8, 8), "red")
    before = CachingDrafter(FakeDrafter(), DraftCache.open(tmp_path))
    before.draft([red])
    monkeypatch.setattr(cache_module, "code_fingerprint", lambda: "edited")
    after = CachingDrafter(FakeDrafter(), DraftCache.open(tmp_path))
    after.draft([red])
    assert after.drafter.calls == [1] and "code:edited" in model_fingerprint(after.model)
