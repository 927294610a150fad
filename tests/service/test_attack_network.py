"""Network attack suite: every address form through the real `alttext serve`, as an image URL
and as a job's webhook URL, inside a private network namespace (``unshare -rn``, only ``lo``)
so that a regression cannot send a packet to any other host. The address check itself is
tested with an injected resolver in test_fetch.py; this proves the running service applies it.
One probe run (tests/support/netns_probe.py) answers every test here."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _namespace_works() -> str | None:
    """None when ``unshare -rn`` can make a namespace here, else why not."""
    if not shutil.which("unshare") or not shutil.which("ip"):
        if os.environ.get("CI") == "true":
            pytest.fail("unshare and ip (util-linux, iproute2) are needed for the network suite")
        return "unshare or ip is not installed"
    probe = subprocess.run(["unshare", "-rn", "ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    if probe.returncode != 0:  # e.g. user namespaces disabled in a container: not a missing tool
        return f"unshare -rn is not permitted here: {probe.stderr.strip()[:200]}"
    return None


@pytest.fixture(scope="module")
def probe() -> dict:
    why = _namespace_works()
    if why:
        pytest.skip(why)
    run = subprocess.run(["unshare", "-rn", sys.executable, "-m", "tests.support.netns_probe"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["namespace_isolated"] is True
    assert result["control_direct"] == 200 and result["control_base64"] == 200
    return result


def test_every_internal_address_form_is_refused_by_the_running_service(probe):
    wrong = [a for a in probe["answers"] if (a["status"], a["code"], a["server_hits"]) != (400, "fetch_blocked", 0)]
    assert wrong == [], wrong
    assert len(probe["answers"]) >= 20


def test_jobs_with_webhooks_to_internal_addresses_are_refused_by_the_running_service(probe):
    # README: `fetch_blocked` 400, "image_url or webhook address refused"; the listener hears nothing.
    answers = probe["webhook_answers"]
    wrong = [a for a in answers if (a["status"], a["code"], a["server_hits"]) != (400, "fetch_blocked", 0)]
    assert wrong == [], wrong
    assert len(answers) >= 21 and answers[-1]["label"] == "jsonl webhook_url"


def test_a_queued_webhook_to_an_internal_address_is_refused_again_at_delivery(probe):
    outbox = probe["outbox"]
    # Control: the server allowed to reach 127.0.0.1 did reach the listener in the namespace ...
    assert probe["outbox_created"] == 202
    assert outbox["attempts_allowed"] >= 1 and outbox["posts_allowed"] == outbox["attempts_allowed"]
    # ... and the server without that allowance refused every retry it made (at least one),
    # counted each, gave up at the end of the schedule (3,1,1: four attempts), and sent nothing.
    assert outbox["state"] == "failed" and outbox["attempts"] == 4
    assert outbox["attempts"] > outbox["attempts_allowed"]
    assert outbox["posts_after"] == 0
