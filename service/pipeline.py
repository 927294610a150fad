"""The one path from image + page context to AltResult. CLI, HTTP API and evaluation all call this."""
from __future__ import annotations

import os
from collections.abc import Sequence

from models.base import Drafter
from models.imageio import LoadedImage, load_image
from models.prompts import Hint
from service.merge import merge
from service.page import PageContext
from service.result import AltResult
from service.settings import Settings, get_settings
from service.text import sanitise, strip_credits

ImageSource = bytes | str | os.PathLike | LoadedImage


def _hint(page: PageContext, settings: Settings) -> Hint:
    """Page text a promptable model may read (cleaned, credit lines removed, short), with the
    page's language and the length budget. As a str it is "caption\ncontext" as before."""
    caption = strip_credits(sanitise(page.caption))[0] if page.caption else ""
    return Hint(caption, sanitise(page.context, limit=500), lang=page.lang,
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
        else load_image(src, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
        for src in images
    ]
    # A decorative image gets alt="" whatever it shows: it is loaded (so bad input still
    # fails) but never costs a model call.
    wanted = [i for i, page in enumerate(pages) if page.role != "decorative"]
    drafts = drafter.draft([loaded[i].image for i in wanted], [_hint(pages[i], settings) for i in wanted]) if wanted else []
    by_index = dict(zip(wanted, drafts))
    return [
        merge(by_index.get(i), page, max_chars=settings.max_chars, review_below=settings.review_below,
              nlp_mode=settings.nlp)
        for i, page in enumerate(pages)
    ]


def describe(
    drafter: Drafter, image: ImageSource, page: PageContext | None = None, settings: Settings | None = None
) -> AltResult:
    return describe_batch(drafter, [image], [page or PageContext()], settings)[0]
