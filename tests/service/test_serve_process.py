"""README command 1's server, as a real `alttext serve` process on 127.0.0.1 with the offline
model, and every curl example in the README's HTTP API section run against it."""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.images import COCO_FIXTURES
from tests.support.api import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ALTTEXT = str(Path(sys.executable).with_name("alttext"))
CATS = COCO_FIXTURES / "000000555705.jpg"


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("serve")
    env = {**os.environ, "ALTTEXT_DATA_DIR": str(data)}
    key = subprocess.run([ALTTEXT, "keys", "create", "readme"], env=env, cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    port = free_port()
    log = data / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([ALTTEXT, "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            try:
                status, _ = _get(f"{base}/ready")
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
                continue
            if status == 200:
                break
            time.sleep(0.2)
        else:
            pytest.fail("server never became ready:\n" + log.read_text()[-3000:])
        yield {"base": base, "key": key, "env": env, "data": data, "log": log}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_health_and_ready(server):
    base = server["base"]
    assert _get(f"{base}/health") == (200, {"status": "ok"})
    status, body = _get(f"{base}/ready")
    assert status == 200 and body["model"]["backend"] == "offline"


def _readme_curls() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The HTTP API", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("curl ") or "| curl " in line]


def test_readme_curl_examples_run(server, tmp_path):
    base, cats = server["base"], base64.b64encode(CATS.read_bytes()).decode()
    other = base64.b64encode((COCO_FIXTURES / "000000020247.jpg").read_bytes()).decode()
    (tmp_path / "batch.json").write_text(json.dumps({"items": [
        {"id": "cats", "image_base64": cats}, {"id": "broken", "image_base64": base64.b64encode(b"nope").decode()}]}))
    (tmp_path / "images.jsonl").write_text(
        json.dumps({"id": "a", "image_base64": cats}) + "\n" + json.dumps({"id": "b", "image_base64": other}) + "\n")
    env = {**os.environ, "ALTTEXT_API_KEY": server["key"]}
    job_id = None
    commands = _readme_curls()
    assert len(commands) >= 8, commands

    def run(command: str) -> str:
        command = (command.replace("http://127.0.0.1:8000", base).replace("photo.jpg", str(CATS))
                   .replace("@batch.json", "@" + str(tmp_path / "batch.json"))
                   .replace("@images.jsonl", "@" + str(tmp_path / "images.jsonl")))
        if "JOB_ID" in command:
            command = command.replace("JOB_ID", job_id)
        out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, env=env,
                             cwd=tmp_path)
        assert out.returncode == 0, (command, out.stderr)
        return out.stdout

    for command in commands:
        out = run(command)
        if "/v1/alt-text:batch" in command:
            results = json.loads(out)["results"]
            assert [r["status"] for r in results] == ["ok", "error"]
            assert "cats" in results[0]["result"]["alt"].lower()
            assert results[1]["error"]["code"] == "unsupported_media_type"
        elif "/v1/alt-text" in command:
            result = json.loads(out)
            assert "cats" in result["alt"].lower(), (command, result)
            assert result["ai_generated"] is True
        elif "/v1/jobs -H" in command:
            assert out.startswith("HTTP/1.1 202")
            job_id = re.search(r"(?im)^location: /v1/jobs/(\S+)", out).group(1)
            deadline = time.monotonic() + 60
            while _get(f"{base}/v1/jobs/{job_id}")[1]["status"] != "completed":
                assert time.monotonic() < deadline
                time.sleep(0.2)
        elif "/results" in command:
            items = json.loads(out)["items"]
            assert [(i["id"], i["status"]) for i in items] == [("a", "ok"), ("b", "ok")]
            assert "cats" in items[0]["result"]["alt"].lower()
        elif "/v1/jobs/" in command:
            job = json.loads(out)
            assert (job["id"], job["status"], job["succeeded"]) == (job_id, "completed", 2)
        elif "/metrics" in command:
            assert "alttext_batch_size_count" in out
        else:
            pytest.fail(f"no check for README example: {command}")
    again = run(next(c for c in commands if "Idempotency-Key" in c))
    assert f"/v1/jobs/{job_id}" in again  # the same job, not a second one


def test_bad_upload_gets_error_envelope(server):
    base = server["base"]
    out = subprocess.run(
        ["curl", "-s", "-D", "-", "-F", "image=@" + str(ROOT / "README.md"), f"{base}/v1/alt-text"],
        capture_output=True, text=True, timeout=30, check=True,
    )
    head, _, body = out.stdout.partition("\n\n")  # text mode turned CRLF into LF
    assert head.startswith("HTTP/1.1 415")
    assert re.search(r"(?im)^x-request-id: \w+", head)
    error = json.loads(body)["error"]
    assert error["code"] == "unsupported_media_type" and error["request_id"]


def test_logs_are_json_without_secrets(server):
    base, key = server["base"], server["key"]
    request = urllib.request.Request(f"{base}/v1/jobs/job_missing", headers={"Authorization": f"Bearer {key}",
                                                                             "X-Request-Id": "log-check-7"})
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(request, timeout=5)
    time.sleep(0.3)
    text = server["log"].read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == "log-check-7"]
    assert mine and mine[0]["status"] == 404 and mine[0]["route"] == "/v1/jobs/{job_id}"
    assert mine[0]["key_id"].startswith("key_")
    assert key not in text
    assert base64.b64encode(CATS.read_bytes()).decode()[:64] not in text
