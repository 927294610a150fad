"""The one path from image + page context to AltResult. CLI, HTTP API and evaluation all call this.

Two stages: ``draft_stage`` runs the model (only this belongs on the model thread) and
``merge_stage`` turns drafts plus page context into alt text (spaCy parsing included).
``describe_batch`` runs both; the service's batcher runs them on different threads."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from models.base import Drafter
from models.draft import Draft
from models.imageio import LoadedImage, load_image
from models.prompts import Hint
from service.merge import merge
from service.page import PageContext
from service.result import AltResult
from service.settings import Settings, get_settings
from service.text import cut_words

ImageSource = bytes | str | os.PathLike | LoadedImage


def page_hint(page: PageContext, settings: Settings) -> Hint:
    """Page text a promptable model may read - the caption without its credit line and a short
    context, both cleaned when the PageContext was made - with the page's language and the length
    budget. As a str it is "caption\ncontext" as before."""
    return Hint(page.caption_body, cut_words(page.context or "", 500), lang=page.lang,
                max_chars=page.max_chars or settings.max_chars)


def describe_batch(
    drafter: Drafter,
    images: Sequence[ImageSource],
    pages: Sequence[PageContext] | None = None,
    settings: Settings | None = None,
) -> list[AltResult]:
    """Describe many images in one drafter batch. Bad images raise models.imageio.ImageError."""
    settings = settings or get_settings()
    pages = list(pages) if pages is not None else [PageContext() for _ in images]
    if len(pages) != len(images):
        raise ValueError("images and pages must have the same length")
    loaded = [
        src
        if isinstance(src, LoadedImage)
        else load_image(src, **settings.image_limits())
        for src in images
    ]
    return merge_stage(draft_stage(drafter, loaded, pages, settings), pages, settings)


@dataclass(frozen=True)
class DraftWork:
    """What one model call needs: the images to draft, their page hints, and where each goes."""

    size: int
    wanted: list[int]
    images: list[Image.Image]
    hints: list[Hint]

    def place(self, drafts: Sequence[Draft]) -> list[Draft | None]:
        """The model's drafts back in input order, None where nothing was drafted."""
        by_index = dict(zip(self.wanted, drafts))
        return [by_index.get(i) for i in range(self.size)]


def draft_work(loaded: Sequence[LoadedImage], pages: Sequence[PageContext], settings: Settings) -> DraftWork:
    """A decorative image gets alt="" whatever it shows: it was loaded (so bad input still
    fails) but never costs a model call."""
    wanted = [i for i, page in enumerate(pages) if page.role != "decorative"]
    return DraftWork(len(pages), wanted, [loaded[i].image for i in wanted],
                     [page_hint(pages[i], settings) for i in wanted])


def draft_stage(drafter: Drafter, loaded: Sequence[LoadedImage], pages: Sequence[PageContext],
                settings: Settings) -> list[Draft | None]:
    """One model call for the batch: a Draft per image, None for decorative ones."""
    work = draft_work(loaded, pages, settings)
    return work.place(drafter.draft(work.images, work.hints) if work.wanted else [])


def merge_stage(drafts: Sequence[Draft | None], pages: Sequence[PageContext], settings: Settings) -> list[AltResult]:
    """Drafts plus what the page says -> alt text (no model involved)."""
    return [
        merge(draft, page, max_chars=settings.max_chars, review_below=settings.review_below, nlp_mode=settings.nlp)
        for draft, page in zip(drafts, pages)
    ]


def describe(
    drafter: Drafter, image: ImageSource, page: PageContext | None = None, settings: Settings | None = None
) -> AltResult:
    return describe_batch(drafter, [image], [page or PageContext()], settings)[0]
