"""wagtail_alttext on a real Wagtail (SQLite) against a real `alttext serve` at ALTTEXT_URL.

Run by tests/integrations/test_wagtail.py, which starts the service and passes ALTTEXT_URL,
ALTTEXT_API_KEY and ALTTEXT_LIMITED_KEY (a key limited to one image a minute)."""
from __future__ import annotations

import base64
import io
import os
import re
import socket
from datetime import timedelta
from pathlib import Path
from unittest import skipUnless

import httpx
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client, TestCase, override_settings
from django.urls import reverse
from django.utils import timezone
from wagtail.images import get_image_model

from wagtail_alttext.models import AltTextStatus

URL = os.environ.get("ALTTEXT_URL", "")
KEY = os.environ.get("ALTTEXT_API_KEY", "")
COCO = Path(os.environ.get("ALTTEXT_FIXTURES", Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "coco"))
PHOTOS = sorted(COCO.glob("*.jpg"))
Image = get_image_model()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_says(path: Path, **fields) -> dict:
    """The running service's own answer for an image (what Wagtail must end up storing)."""
    body = {"image_base64": base64.b64encode(path.read_bytes()).decode(), **fields}
    response = httpx.post(f"{URL}/v1/alt-text", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    response.raise_for_status()
    return response.json()


def settings_with(**changes):
    from django.conf import settings

    return override_settings(WAGTAIL_ALTTEXT={**settings.WAGTAIL_ALTTEXT, **changes})


@skipUnless(URL, "ALTTEXT_URL is not set: run through tests/integrations/test_wagtail.py")
class AltTextOnWagtail(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.admin = get_user_model().objects.create_superuser("admin", "admin@example.org", "admin-Passw0rd!")

    def setUp(self):
        self.client.force_login(self.admin)

    def upload(self, path: Path, filename: str, title: str | None = None, client: Client | None = None) -> Image:
        """Upload through Wagtail's admin "Add an image" form, as an editor does."""
        client = client or self.client
        with self.captureOnCommitCallbacks(execute=True):
            response = client.post(reverse("wagtailimages:add"), {
                "title": title or Path(filename).stem, "collection": 1,
                "file": SimpleUploadedFile(filename, path.read_bytes(), content_type="image/jpeg")})
        self.assertEqual(response.status_code, 302, response.content[:2000])
        return Image.objects.latest("pk")

    def existing(self, path: Path, alt: str) -> Image:
        """An image that predates the app (no upload hook)."""
        with settings_with(ON_UPLOAD=False), self.captureOnCommitCallbacks(execute=True):
            return Image.objects.create(title=path.stem, description=alt,
                                        file=SimpleUploadedFile(path.name, path.read_bytes()))

    def test_upload_fills_description_from_the_running_service(self):
        image = self.upload(PHOTOS[-1], "IMG_2041.jpg", title="Milo and Luna guarding the front door")
        expected = service_says(PHOTOS[-1], context="Milo and Luna guarding the front door", lang="en-gb", max_chars=125)
        image.refresh_from_db()
        self.assertTrue(expected["alt"])
        self.assertEqual(image.description, expected["alt"])
        status = image.alttext_status
        self.assertTrue(status.ai_generated)
        self.assertEqual((status.source, status.needs_review), ("draft", expected["needs_review"]))
        self.assertAlmostEqual(status.confidence, expected["confidence"])
        self.assertIsNone(status.pending_until)
        page = self.client.get(reverse("wagtail_alttext:index")).content.decode()
        self.assertIn(expected["alt"], page)
        self.assertIn("AI-generated", page)

    def test_description_typed_by_an_editor_becomes_human_alt(self):
        image = self.upload(PHOTOS[0], "IMG_3001.jpg")
        self.assertTrue(AltTextStatus.objects.get(image=image).ai_generated)
        response = self.client.post(reverse("wagtailimages:edit", args=[image.pk]), {
            "title": image.title, "collection": 1, "description": "A red bus outside the depot", "tags": ""})
        self.assertEqual(response.status_code, 302)
        image.refresh_from_db()
        status = AltTextStatus.objects.get(image=image)
        self.assertEqual(image.description, "A red bus outside the depot")
        self.assertEqual((status.ai_generated, status.source), (False, "human"))

    def test_service_down_never_blocks_an_upload_and_the_retry_fills_it(self):
        with settings_with(SERVICE_URL=f"http://127.0.0.1:{free_port()}"):
            image = self.upload(PHOTOS[1], "IMG_3002.jpg")
            status = AltTextStatus.objects.get(image=image)
            self.assertEqual((image.description, status.error_code), ("", "unreachable"))
            self.assertGreater(status.pending_until, timezone.now())
            page = self.client.get(reverse("wagtail_alttext:index")).content.decode()
            self.assertIn("Last service error", page)
            self.assertIn("1 image waiting for a retry", page)
        AltTextStatus.objects.filter(pk=status.pk).update(pending_until=timezone.now() - timedelta(seconds=1))
        out = io.StringIO()
        call_command("alttext_retry", stdout=out)
        self.assertIn("1 described", out.getvalue())
        image.refresh_from_db()
        status.refresh_from_db()
        self.assertTrue(image.description and status.ai_generated)
        self.assertEqual((status.pending_until, status.error_code), (None, ""))
        self.assertIn("No service errors", self.client.get(reverse("wagtail_alttext:index")).content.decode())

    @skipUnless(os.environ.get("ALTTEXT_LIMITED_KEY"), "needs a rate-limited key")
    def test_429_waits_for_the_services_retry_after(self):
        with settings_with(API_KEY=os.environ["ALTTEXT_LIMITED_KEY"]):
            first = self.upload(PHOTOS[2], "IMG_3003.jpg")
            second = self.upload(PHOTOS[3], "IMG_3004.jpg")
        first.refresh_from_db()
        second.refresh_from_db()
        self.assertTrue(first.description)
        self.assertEqual(second.description, "")
        status = AltTextStatus.objects.get(image=second)
        self.assertEqual(status.error_code, "rate_limited")
        wait = (status.pending_until - timezone.now()).total_seconds()
        self.assertTrue(0 < wait <= 61, wait)

    def test_propose_mode_and_approve_with_csrf_and_permission_checks(self):
        with settings_with(MODE="propose"):
            image = self.upload(PHOTOS[4], "IMG_3005.jpg")
        status = AltTextStatus.objects.get(image=image)
        self.assertEqual(image.description, "")
        self.assertTrue(status.proposal and status.needs_review)
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(self.admin)
        page = browser.get(reverse("wagtail_alttext:index")).content.decode()
        self.assertIn("Needs review", page)
        self.assertIn("Proposed alt text:", page)
        url = reverse("wagtail_alttext:approve", args=[image.pk])
        self.assertEqual(browser.post(url).status_code, 403)          # no CSRF token
        # an editor without permission to change images may not approve
        editor = get_user_model().objects.create_user("editor", password="x")
        editor.groups.add(Group.objects.create(name="readers"))
        editor.user_permissions.add(Permission.objects.get(codename="access_admin"))
        other = Client()
        other.force_login(editor)
        refused = other.post(url)  # Wagtail turns PermissionDenied into a redirect home with an error message
        self.assertEqual((refused.status_code, refused.url), (302, reverse("wagtailadmin_home")))
        image.refresh_from_db()
        self.assertEqual(image.description, "")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        done = browser.post(url, {"csrfmiddlewaretoken": token})
        self.assertEqual((done.status_code, done.url), (302, reverse("wagtail_alttext:index")))
        image.refresh_from_db()
        status.refresh_from_db()
        self.assertEqual(image.description, status.generated_alt)
        self.assertTrue(image.description and status.ai_generated)
        self.assertEqual((status.needs_review, status.proposal), (False, ""))

    def test_backfill_command_is_resumable_and_keeps_human_alt(self):
        empty = self.existing(PHOTOS[5], "")
        poor = self.existing(PHOTOS[6], "IMG_0001")
        good = self.existing(PHOTOS[-1], "Two tabby cats asleep on a pair of trainers")
        dry = io.StringIO()
        call_command("alttext_backfill", "--dry-run", stdout=dry)
        self.assertIn(f"{empty.pk}\twould be filled\t", dry.getvalue())
        self.assertFalse(AltTextStatus.objects.filter(image=empty).exists())
        first, rest = io.StringIO(), io.StringIO()
        call_command("alttext_backfill", "--limit", "1", stdout=first)
        self.assertIn("run again to continue", first.getvalue())
        call_command("alttext_backfill", stdout=rest)
        self.assertIn("every image checked", rest.getvalue())
        ids = [int(line.split("\t")[0]) for line in (first.getvalue() + rest.getvalue()).splitlines() if "\t" in line]
        self.assertEqual(sorted(ids), sorted({empty.pk, poor.pk, good.pk}))  # each once: the second run resumed
        for image in (empty, poor, good):
            image.refresh_from_db()
        self.assertTrue(empty.description and empty.alttext_status.ai_generated)
        self.assertEqual(poor.description, "IMG_0001")
        self.assertTrue(poor.alttext_status.proposal and poor.alttext_status.needs_review)
        self.assertIn("existing_alt_filename", poor.alttext_status.warnings)
        self.assertFalse(poor.alttext_status.ai_generated)
        self.assertEqual(good.description, "Two tabby cats asleep on a pair of trainers")
        self.assertFalse(good.alttext_status.ai_generated)
        again = io.StringIO()
        call_command("alttext_backfill", "--overwrite-human", stdout=again)
        self.assertIn("filled 0, proposed 0, kept 0, failed 0; every image checked", again.getvalue())

    def test_backfill_stops_on_an_unreachable_service_and_resumes(self):
        from django.core.management import CommandError

        todo = self.existing(PHOTOS[0], "")
        with settings_with(SERVICE_URL=f"http://127.0.0.1:{free_port()}"), self.assertRaises(CommandError) as down:
            call_command("alttext_backfill", stdout=io.StringIO())
        self.assertIn("Run the command again to resume", str(down.exception))
        out = io.StringIO()
        call_command("alttext_backfill", stdout=out)
        self.assertIn(f"{todo.pk}\tfilled\t", out.getvalue())
