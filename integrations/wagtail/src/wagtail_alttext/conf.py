"""Settings: ``WAGTAIL_ALTTEXT = {...}`` in Django settings.

SERVICE_URL  where `alttext serve` listens (default http://127.0.0.1:8000)
API_KEY      `alttext keys create wagtail-site` (default none)
TIMEOUT      seconds per request (default 15)
MAX_CHARS    `max_chars` sent with each image (default 125)
LANG         `lang` sent with each image (default: LANGUAGE_CODE)
MODE         "fill" writes empty descriptions; "propose" only stores a proposal to approve
ON_UPLOAD    describe new images when they are saved (default True)
"""
from __future__ import annotations

from django.conf import settings

DEFAULTS = {
    "SERVICE_URL": "http://127.0.0.1:8000",
    "API_KEY": "",
    "TIMEOUT": 15,
    "MAX_CHARS": 125,
    "LANG": None,
    "MODE": "fill",
    "ON_UPLOAD": True,
}


def get(name: str):
    value = {**DEFAULTS, **getattr(settings, "WAGTAIL_ALTTEXT", {})}[name]
    if name == "LANG" and not value:
        return settings.LANGUAGE_CODE
    return value
