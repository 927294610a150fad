"""Describe images through the service and store the answers; failures queue a retry."""
from __future__ import annotations

import logging
import os
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from wagtail.images import get_image_model

from . import conf
from .client import AltTextClient, ServiceError
from .models import AltTextStatus

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
MAX_DESCRIPTION = 255  # Wagtail's description field


def page_fields(image) -> dict:
    """What the site says about the image: its title (unless it is just the file name), tags, current alt."""
    title = (image.title or "").strip()
    stem = os.path.splitext(os.path.basename(image.file.name or ""))[0]
    context = [] if not title or _slug(title) == _slug(stem) or _slug(title).startswith(_slug(stem)) else [title]
    tags = [t.name for t in image.tags.all()] if image.pk else []
    if tags:
        context.append("Tags: " + ", ".join(tags))
    return {
        "context": "\n".join(context),
        "lang": conf.get("LANG"),
        "existing_alt": image.description or "",
        "max_chars": min(int(conf.get("MAX_CHARS")), MAX_DESCRIPTION),
    }


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _read(image) -> bytes:
    with image.open_file() as handle:
        return handle.read()


def describe(image, *, overwrite_human: bool = False, client: AltTextClient | None = None) -> dict | None:
    """Ask the service about one image and store the answer; on failure record it and queue a retry."""
    client = client or AltTextClient()
    try:
        result = client.describe(_read(image), os.path.basename(image.file.name), page_fields(image),
                                 request_id=f"wagtail-image-{image.pk}")
    except ServiceError as err:
        failed(image, err)
        return None
    apply(image, result, overwrite_human=overwrite_human)
    return result


def status_for(image) -> AltTextStatus:
    return AltTextStatus.objects.get_or_create(image_id=image.pk)[0]


@transaction.atomic
def apply(image, result: dict, *, overwrite_human: bool = False) -> str:
    """Store an AltResult. Returns what happened: filled, proposed or kept. Human alt is never replaced
    unless ``overwrite_human`` is set (and then only by the service's proposal for poor alt)."""
    status = status_for(image)
    current = (image.description or "").strip()
    alt, proposal = result.get("alt") or "", result.get("proposal") or ""
    review, source = bool(result.get("needs_review")), result.get("source") or "draft"
    outcome = "kept"
    if not current and alt and source != "human":
        if conf.get("MODE") == "propose":
            proposal, review, outcome = alt, True, "proposed"
        else:
            _write(image, status, alt)
            source, outcome = "draft", "filled"
    elif current and proposal and overwrite_human:
        _write(image, status, proposal)
        source, outcome, proposal = "draft", "filled", ""
    elif proposal:
        outcome = "proposed"
    if outcome == "kept" and current and not status.ai_generated:
        source = "human"
    status.needs_review = review
    status.confidence = result.get("confidence")
    status.warnings = list(result.get("warnings") or [])
    status.proposal = proposal
    status.source = source
    status.checked_at = timezone.now()
    status.pending_until, status.attempts, status.error_code, status.error_message = None, 0, "", ""
    status.save()
    return outcome


def _write(image, status: AltTextStatus, alt: str) -> None:
    alt = alt[:MAX_DESCRIPTION]
    status.ai_generated, status.generated_alt = True, alt
    # update(), not save(): the save signal must not take our own write for a human edit or loop.
    type(image).objects.filter(pk=image.pk).update(description=alt)
    image.description = alt


def approve(image, user) -> None:
    """The description (or, when it is empty, the proposal) is reviewed by ``user``."""
    status = status_for(image)
    if not (image.description or "").strip() and status.proposal:
        _write(image, status, status.proposal)
        status.source = "draft"
    status.proposal, status.needs_review, status.approved_by = "", False, user
    status.save()


def mark_human_if_edited(image) -> None:
    """A description that differs from what this app wrote was typed by a person: it is human alt."""
    status = AltTextStatus.objects.filter(image_id=image.pk).first()
    if status is None or not status.ai_generated or (image.description or "") == status.generated_alt:
        return
    status.ai_generated, status.generated_alt, status.source = False, "", "human"
    status.needs_review, status.proposal, status.approved_by = False, "", None
    status.save()


def failed(image, err: ServiceError) -> None:
    status = status_for(image)
    status.attempts += 1
    status.error_code, status.error_message = err.code, str(err.message)
    if err.retryable and status.attempts < MAX_ATTEMPTS:
        delay = err.retry_after if err.retry_after else min(6 * 3600, 60 * 2 ** (status.attempts - 1))
        status.pending_until = timezone.now() + timedelta(seconds=delay)
    else:
        status.pending_until = None
    status.save()
    log.warning("alttext: image %s not described (%s); %s", image.pk, err,
                f"retry at {status.pending_until:%Y-%m-%d %H:%M:%S}" if status.pending_until else "not retried")


def retry_due(limit: int = 50) -> dict:
    """Describe images whose retry time has come (run `manage.py alttext_retry` from cron)."""
    counts = {"done": 0, "failed": 0}
    due = AltTextStatus.objects.filter(pending_until__lte=timezone.now()).order_by("pending_until")[:limit]
    images = get_image_model().objects.in_bulk([s.image_id for s in due])
    for status in due:
        image = images.get(status.image_id)
        if image is None:
            continue
        result = describe(image)
        counts["done" if result is not None else "failed"] += 1
        if result is None and AltTextStatus.objects.get(pk=status.pk).error_code == "rate_limited":
            break  # the service asked us to slow down
    return counts


def last_error() -> AltTextStatus | None:
    return AltTextStatus.objects.exclude(error_code="").order_by("-updated_at").first()


def backfill_candidates(limit: int | None = None):
    """Images with an empty description or never checked by the service, in id order. A run that stops
    leaves the rest unchecked, so the next run resumes where it stopped."""
    from django.db.models import Q

    qs = get_image_model().objects.filter(
        Q(alttext_status__isnull=True) | Q(alttext_status__checked_at__isnull=True)
        | (Q(description="") & Q(alttext_status__proposal=""))
    ).exclude(alttext_status__error_code__in=["invalid_image", "unsupported_media_type", "image_too_large"]).order_by("pk")
    return qs[:limit] if limit else qs


def backfill(*, limit: int | None = None, dry_run: bool = False, overwrite_human: bool = False,
             batch_size: int = 8, report=None, client: AltTextClient | None = None) -> dict:
    """Walk candidates through the batch endpoint. Raises ServiceError when the service fails a whole
    batch (what was stored before stays; the next run continues)."""
    client = client or AltTextClient()
    counts = {"filled": 0, "proposed": 0, "kept": 0, "failed": 0}
    done, seen = 0, set()
    while limit is None or done < limit:
        size = batch_size if limit is None else min(batch_size, limit - done)
        batch = [img for img in backfill_candidates().exclude(pk__in=seen)[:size]]
        if not batch:
            break
        seen.update(img.pk for img in batch)
        items = [{"id": str(img.pk), "image": _read(img), "caption_visible": True, **page_fields(img)} for img in batch]
        by_id = {str(img.pk): img for img in batch}
        for row in client.describe_batch(items):
            image = by_id[row.get("id")]
            if row.get("result") is None:
                error = row.get("error") or {}
                if not dry_run:
                    status = status_for(image)
                    status.error_code, status.error_message = error.get("code", "error"), error.get("message", "")
                    status.checked_at = timezone.now()
                    status.save()
                counts["failed"] += 1
                if report:
                    report(image, "failed", f"{error.get('code')}: {error.get('message')}")
                continue
            result = row["result"]
            if dry_run:
                outcome = _would(image, result, overwrite_human)
            else:
                outcome = apply(image, result, overwrite_human=overwrite_human)
            counts[outcome] += 1
            if report:
                text = image.description if outcome == "kept" else (result.get("proposal") or result.get("alt") or "")
                report(image, outcome, text)
        done += len(batch)
    counts["finished"] = not backfill_candidates().exclude(pk__in=seen).exists()
    return counts


def _would(image, result: dict, overwrite_human: bool) -> str:
    if not (image.description or "").strip():
        return "proposed" if conf.get("MODE") == "propose" else "filled"
    if result.get("proposal"):
        return "filled" if overwrite_human else "proposed"
    return "kept"
