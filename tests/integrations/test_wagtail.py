"""The Wagtail app (integrations/wagtail): its own Django test suite, on SQLite, run by Django's test
runner against the real `alttext serve` started here."""
from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys

from tests.support.cms import ROOT, missing_or_fail

APP = ROOT / "integrations" / "wagtail"


def test_wagtail_app_passes_its_django_tests_against_the_running_service(alttext_server):
    missing_or_fail("Wagtail app", None if importlib.util.find_spec("wagtail_alttext") else
                    "wagtail_alttext is not installed (pip install -e integrations/wagtail)")
    env = {**os.environ, "ALTTEXT_URL": alttext_server.base, "ALTTEXT_API_KEY": alttext_server.key,
           "ALTTEXT_LIMITED_KEY": alttext_server.create_key("wagtail-limited", rate_limit=1),
           "DJANGO_SETTINGS_MODULE": "testproject.settings"}
    run = subprocess.run([sys.executable, "-m", "django", "test", "testproject", "-v", "2"], cwd=APP, env=env,
                         capture_output=True, text=True, timeout=600)
    out = run.stderr  # the test runner's report; stdout is the migrations
    assert run.returncode == 0, out[-6000:]
    ran = re.search(r"^Ran (\d+) tests? in .*\n\nOK$", out, re.M)
    assert ran and int(ran.group(1)) >= 7, out[-6000:]               # "OK", not "OK (skipped=...)"
    assert "wagtail-image-" in alttext_server.log.read_text()      # the service saw the app's requests


def test_wagtail_app_talks_to_the_service_over_http_only():
    """The app must work without alttext installed: it never imports models, service or evaluation."""
    ours = {"models", "service", "evaluation"}
    for path in (APP / "src" / "wagtail_alttext").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            assert not any(name.split(".")[0] in ours for name in names), f"{path}: imports {names}"
    toml = (APP / "pyproject.toml").read_text()
    assert "alttext" not in toml.split("dependencies", 1)[1].split("]", 1)[0].replace("wagtail-alttext", "")
