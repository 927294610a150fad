"""README command 1's server, as a real `alttext serve` process on 127.0.0.1, and the README's curl example."""
from __future__ import annotations

import json
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import COCO_FIXTURES

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("alttext")), "serve", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    seen_loading = False
    try:
        while time.monotonic() < deadline:
            try:
                status, body = _get(f"{base}/ready")
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
                continue
            if status == 503:
                seen_loading = True
            if status == 200:
                break
            time.sleep(0.2)
        else:
            pytest.fail("server never became ready")
        yield base, seen_loading
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_health_and_ready(server):
    base, _ = server
    assert _get(f"{base}/health") == (200, {"status": "ok"})
    status, body = _get(f"{base}/ready")
    assert status == 200 and body["model"]["backend"] == "offline"


def test_readme_curl_example_runs(server):
    base, _ = server
    readme = (ROOT / "README.md").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("curl ") and "/v1/alt-text" in line)
    command = command.replace("photo.jpg", str(COCO_FIXTURES / "000000555705.jpg")).replace(
        "http://127.0.0.1:8000", base)
    out = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=60, check=True)
    result = json.loads(out.stdout)
    assert "cats" in result["alt"].lower()
    assert result["ai_generated"] is True and result["source"] == "draft"


def test_bad_upload_gets_error_envelope(server):
    base, _ = server
    out = subprocess.run(
        ["curl", "-s", "-D", "-", "-F", "image=@" + str(ROOT / "README.md"), f"{base}/v1/alt-text"],
        capture_output=True, text=True, timeout=30, check=True,
    )
    head, _, body = out.stdout.partition("\n\n")  # text mode turned CRLF into LF
    assert head.startswith("HTTP/1.1 415")
    assert re.search(r"(?im)^x-request-id: \w+", head)
    error = json.loads(body)["error"]
    assert error["code"] == "unsupported_media_type" and error["request_id"]
