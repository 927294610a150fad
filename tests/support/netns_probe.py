"""Run inside a private network namespace (``unshare -rn``): a real `alttext serve` on the
debug model, a local image server and a webhook listener on 127.0.0.1, and every address form
that must be refused sent to the service, as ``image_url`` and as a job's webhook URL. Prints
one JSON object: the answers, and how many requests the image server and the listener saw (must
be 0 for refused forms). Nothing here can reach another host: the namespace has only ``lo``.

Webhooks are checked twice, as the docs say: when the job is posted (400 ``fetch_blocked``) and
again at each delivery. For the second, a job is posted to a first server that may reach
127.0.0.1 (``ALTTEXT_FETCH_ALLOW``), whose first delivery reaches the listener (which answers 500,
so the delivery stays in the outbox); the main server, on the same database without that
allowance, must then refuse every retry without a request reaching the listener.

    unshare -rn python -m tests.support.netns_probe
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from tests.support.api import b64, free_port, png
from tests.support.servers import LocalServer

ALTTEXT = str(Path(sys.executable).with_name("alttext"))

# (label, URL template) for forms that must be refused although they reach this host.
REFUSED = [
    ("ipv4 loopback", "http://127.0.0.1:{port}/img"),
    ("ipv4 loopback other", "http://127.0.0.2:{port}/img"),
    ("decimal", "http://2130706433:{port}/img"),
    ("hex", "http://0x7f000001:{port}/img"),
    ("octal", "http://0177.0.0.1:{port}/img"),
    ("short", "http://127.1:{port}/img"),
    ("unspecified v4", "http://0.0.0.0:{port}/img"),
    ("unspecified v6", "http://[::]:{port}/img"),
    ("localhost", "http://localhost:{port}/img"),
    ("v6 loopback", "http://[::1]:{port}/img"),
    ("v4-mapped", "http://[::ffff:127.0.0.1]:{port}/img"),
    ("v4-mapped hex", "http://[::ffff:7f00:1]:{port}/img"),
    ("v4-compatible", "http://[::127.0.0.1]:{port}/img"),
    ("v4-translated", "http://[::ffff:0:127.0.0.1]:{port}/img"),
    ("nat64", "http://[64:ff9b::7f00:1]:{port}/img"),
    ("nat64 local", "http://[64:ff9b:1::7f00:1]:{port}/img"),
    ("6to4", "http://[2002:7f00:1::]:{port}/img"),
    ("metadata", "http://169.254.169.254/latest/meta-data/"),
    ("metadata v6", "http://[fd00:ec2::254]/"),
    ("redirect to loopback", "http://127.0.0.1:{port}/redirect?to=http://127.0.0.1:{port}/img"),
    ("credentials", "http://user:pw@127.0.0.1:{port}/img"),
]


def _request(base: str, path: str, body: dict | None = None, ctype: str = "application/json",
             data: bytes | None = None) -> tuple[int, dict]:
    if body is not None:
        data = json.dumps(body).encode()
    req = urllib.request.Request(f"{base}{path}", data=data, headers={"Content-Type": ctype} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _post(base: str, body: dict) -> tuple[int, dict]:
    return _request(base, "/v1/alt-text", body)


@contextmanager
def serve(env: dict, log_path: Path):
    """A real `alttext serve` on a free port, ready; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "a") as log:
        proc = subprocess.Popen([ALTTEXT, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"{base}/ready", timeout=5) as resp:
                        if resp.status == 200:
                            break
                except OSError:  # not listening yet, 503 while loading, or slow on a busy machine
                    pass
                time.sleep(0.2)
            else:
                raise SystemExit("server never became ready:\n" + log_path.read_text()[-2000:])
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def _wait_job(base: str, job_id: str, done, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = _request(base, f"/v1/jobs/{job_id}")[1]
        if done(job) or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def _posts(server: LocalServer) -> int:
    return sum(r["method"] == "POST" for r in server.seen.requests)


def main() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    data = Path(tempfile.mkdtemp(prefix="alttext-netns-"))
    env = {**os.environ, "ALTTEXT_DATA_DIR": str(data), "ALTTEXT_MODEL": "debug", "ALTTEXT_FETCH_TIMEOUT_S": "3",
           "ALTTEXT_LOG_FORMAT": "text", "ALTTEXT_WEBHOOK_RETRY_DELAYS_S": "3,1,1",
           "ALTTEXT_WEBHOOK_TIMEOUT_S": "3"}
    env.pop("ALTTEXT_FETCH_ALLOW", None)
    secret = "whsec_" + b64(b"netns probe webhook secret 32 b.")
    item = {"image_base64": b64(png("blue"))}
    log = data / "server.log"
    out: dict = {"answers": [], "webhook_answers": [], "namespace_isolated": None}
    with LocalServer(png("red")) as images, LocalServer(fail_first=10**6) as hooks:
        hook_url = hooks.url("/hook")
        # 1. A server allowed to reach 127.0.0.1 posts the job's first delivery to the listener
        #    (the listener answers 500, so the delivery stays in the outbox for a retry).
        with serve({**env, "ALTTEXT_FETCH_ALLOW": "127.0.0.1/32"}, log) as base:
            status, job = _request(base, "/v1/jobs", {"items": [item], "webhook": {"url": hook_url, "secret": secret}})
            out["outbox_created"] = status
            job = _wait_job(base, job["id"], lambda j: (j.get("webhook") or {}).get("attempts", 0) >= 1)
        outbox = {"id": job["id"], "attempts_allowed": job["webhook"]["attempts"], "posts_allowed": _posts(hooks)}
        # 2. The main server: no allowance; the same database.
        with serve(env, log) as base:
            for label, template in REFUSED:
                seen_before = len(images.seen.requests)
                status, body = _post(base, {"image_url": template.format(port=images.port)})
                out["answers"].append({"label": label, "status": status, "code": body.get("error", {}).get("code"),
                                       "server_hits": len(images.seen.requests) - seen_before})
            for label, template in REFUSED:  # the same forms as a job's webhook
                url = template.format(port=hooks.port).replace("/img", "/hook")
                seen_before = len(hooks.seen.requests)
                status, body = _request(base, "/v1/jobs", {"items": [item], "webhook": {"url": url, "secret": secret}})
                out["webhook_answers"].append({"label": label, "status": status,
                                               "code": body.get("error", {}).get("code"),
                                               "server_hits": len(hooks.seen.requests) - seen_before})
            seen_before = len(hooks.seen.requests)
            status, body = _request(base, "/v1/jobs?webhook_url=" + urllib.parse.quote(hook_url, safe=""),
                                    ctype="application/jsonl", data=json.dumps(item).encode() + b"\n")
            out["webhook_answers"].append({"label": "jsonl webhook_url", "status": status,
                                           "code": body.get("error", {}).get("code"),
                                           "server_hits": len(hooks.seen.requests) - seen_before})
            # the job from step 1: every retry is refused here, then the delivery is given up
            job = _wait_job(base, outbox["id"], lambda j: j["webhook"]["state"] == "failed")
            time.sleep(1.5)  # a late attempt would have had time to arrive
            outbox.update(state=job["webhook"]["state"], attempts=job["webhook"]["attempts"],
                          posts_after=_posts(hooks) - outbox["posts_allowed"])
            out["outbox"] = outbox
            # controls: the image server is reachable in here (so the refusals above are the
            # address check, not a dead network) and the service still describes images
            with urllib.request.urlopen(f"http://127.0.0.1:{images.port}/img", timeout=5) as resp:
                out["control_direct"] = resp.status
            out["control_base64"] = _post(base, {"image_base64": b64(png("blue"))})[0]
    import socket

    try:
        socket.create_connection(("192.0.2.1", 80), timeout=1).close()
        out["namespace_isolated"] = False
    except OSError:
        out["namespace_isolated"] = True
    print(json.dumps(out))


if __name__ == "__main__":
    main()
