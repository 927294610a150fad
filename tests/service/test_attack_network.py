"""Network attack suite: every address form through the real `alttext serve`, inside a
private network namespace (``unshare -rn``, only ``lo``) so that a regression cannot send a
packet to any other host. The address check itself is tested with an injected resolver in
test_fetch.py; this proves the running service applies it."""
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


def test_every_internal_address_form_is_refused_by_the_running_service():
    why = _namespace_works()
    if why:
        pytest.skip(why)
    run = subprocess.run(["unshare", "-rn", sys.executable, "-m", "tests.support.netns_probe"], cwd=ROOT,
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["namespace_isolated"] is True
    assert result["control_direct"] == 200 and result["control_base64"] == 200
    wrong = [a for a in result["answers"] if (a["status"], a["code"], a["server_hits"]) != (400, "fetch_blocked", 0)]
    assert wrong == [], wrong
    assert len(result["answers"]) >= 20
