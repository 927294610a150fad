"""A minimal Wagtail site for the app's tests (SQLite) and for the screenshot script.

The service comes from the environment: ALTTEXT_URL and ALTTEXT_API_KEY (the tests are started by
tests/integrations/test_wagtail.py next to a running `alttext serve`)."""
import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "test-only-not-secret"
DEBUG = os.environ.get("WAGTAIL_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = [
    "wagtail_alttext",
    "wagtail.users",
    "wagtail.images",
    "wagtail.documents",
    "wagtail.admin",
    "wagtail.search",
    "wagtail.sites",
    "wagtail",
    "taggit",
    "modelcluster",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "testproject.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                         "NAME": os.environ.get("WAGTAIL_DB", str(Path(tempfile.gettempdir()) / "wagtail-alttext.sqlite3"))}}
MEDIA_ROOT = os.environ.get("WAGTAIL_MEDIA", tempfile.mkdtemp(prefix="wagtail-alttext-media-"))
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
USE_TZ = True
LANGUAGE_CODE = "en-gb"
WAGTAIL_SITE_NAME = "Harbour Street notes"
WAGTAILADMIN_BASE_URL = "http://127.0.0.1"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
WAGTAIL_ALTTEXT = {
    "SERVICE_URL": os.environ.get("ALTTEXT_URL", "http://127.0.0.1:8000"),
    "API_KEY": os.environ.get("ALTTEXT_API_KEY", ""),
    "TIMEOUT": int(os.environ.get("ALTTEXT_TIMEOUT", "30")),
}
