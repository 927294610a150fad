"""On image save: describe new images (after the transaction commits); notice human edits."""
from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_save
from wagtail.images import get_image_model

from . import conf

log = logging.getLogger(__name__)


def on_image_saved(sender, instance, created, raw=False, **kwargs) -> None:
    if raw:  # fixtures
        return
    from . import services

    if not created:
        services.mark_human_if_edited(instance)
        return
    if not conf.get("ON_UPLOAD") or (instance.description or "").strip():
        return

    def run() -> None:
        try:
            services.describe(instance)
        except Exception:  # an upload never fails because of us; the backfill picks the image up later
            log.exception("alttext: describing image %s failed", instance.pk)

    transaction.on_commit(run)


def connect() -> None:
    post_save.connect(on_image_saved, sender=get_image_model(), dispatch_uid="wagtail_alttext_image_saved")
