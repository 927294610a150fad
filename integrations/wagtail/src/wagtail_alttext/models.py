from __future__ import annotations

from django.conf import settings
from django.db import models
from wagtail.images import get_image_model_string


class AltTextStatus(models.Model):
    """Where an image's alt text (Wagtail's ``description``) came from and whether it needs review."""

    image = models.OneToOneField(get_image_model_string(), on_delete=models.CASCADE, related_name="alttext_status")
    ai_generated = models.BooleanField(default=False, help_text="The description is the service's text.")
    generated_alt = models.CharField(max_length=255, blank=True, default="", help_text="What this app wrote.")
    needs_review = models.BooleanField(default=False)
    confidence = models.FloatField(null=True, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    proposal = models.TextField(blank=True, default="", help_text="Offered instead of (or, to approve, for) the alt.")
    source = models.CharField(max_length=20, blank=True, default="")
    checked_at = models.DateTimeField(null=True, blank=True, help_text="Last answer from the service.")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    pending_until = models.DateTimeField(null=True, blank=True, db_index=True, help_text="Next retry, while queued.")
    attempts = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "alt text status"
        verbose_name_plural = "alt text statuses"

    def __str__(self) -> str:
        return f"alt text status of image {self.image_id}"
