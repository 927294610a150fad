"""Run inside a private network namespace (``unshare -rn``): a real `alttext serve` on the
debug model, a local image server on 127.0.0.1, and every address form that must be refused
sent to it as ``image_url``. Prints one JSON object: the answers, and how many requests the
image server saw (must be 0 for refused forms). Nothing here can reach another host: the
namespace has only ``lo``.

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
import urllib.request
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


def _post(base: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(f"{base}/v1/alt-text", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def main() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    data = tempfile.mkdtemp(prefix="alttext-netns-")
    env = {**os.environ, "ALTTEXT_DATA_DIR": data, "ALTTEXT_MODEL": "debug", "ALTTEXT_FETCH_TIMEOUT_S": "3",
           "ALTTEXT_LOG_FORMAT": "text"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out: dict = {"answers": [], "namespace_isolated": None}
    with LocalServer(png("red")) as images, open(Path(data) / "server.log", "w") as log:
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
                raise SystemExit("server never became ready:\n" + (Path(data) / "server.log").read_text()[-2000:])
            for label, template in REFUSED:
                seen_before = len(images.seen.requests)
                status, body = _post(base, {"image_url": template.format(port=images.port)})
                out["answers"].append({"label": label, "status": status, "code": body.get("error", {}).get("code"),
                                       "server_hits": len(images.seen.requests) - seen_before})
            # controls: the image server is reachable in here (so the refusals above are the
            # address check, not a dead network) and the service still describes images
            with urllib.request.urlopen(f"http://127.0.0.1:{images.port}/img", timeout=5) as resp:
                out["control_direct"] = resp.status
            out["control_base64"] = _post(base, {"image_base64": b64(png("blue"))})[0]
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    import socket

    try:
        socket.create_connection(("192.0.2.1", 80), timeout=1).close()
        out["namespace_isolated"] = False
    except OSError:
        out["namespace_isolated"] = True
    print(json.dumps(out))


if __name__ == "__main__":
    main()
