"""Small real HTTP(S) servers on 127.0.0.1 for tests, all on one base (port 0, a daemon thread,
``with`` to start and stop):

- ``LocalServer``: fixed routes for fetch and webhook tests (an image, redirects, statuses,
  endless and slow bodies, a recording webhook receiver), optionally over TLS.
- ``Site``: a little web site, a dict of path -> response, for crawl and backfill tests.
"""
from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1, quiet (no request log in test output), with plain replies."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def send(self, status: int, body: bytes, ctype: str = "text/plain", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str, status: int = 302) -> None:
        self.send(status, b"", headers={"Location": location})


class ThreadedServer:
    """Serves ``handler`` on 127.0.0.1 (a free port) from a daemon thread between ``with`` and its end."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        if tls:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if tls else "http"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def add(self, **row) -> None:
        with self.lock:
            self.requests.append(row)


class LocalServer(ThreadedServer):
    """Routes: /img (a PNG), /redirect?to=URL, /status/N, /big (endless chunked body),
    /declared-big (huge Content-Length), /slow (drips a byte every 0.5 s), /hook (records a POST;
    the first ``fail_first`` POSTs get 500; a POST to /redirect?to=URL gets a 302)."""

    def __init__(self, image: bytes = b"", *, tls: ssl.SSLContext | None = None, fail_first: int = 0) -> None:
        self.image, self.fail_first = image, fail_first
        self.seen = Recorder()
        self.sent_bytes = 0
        server = self

        class Routes(Handler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                server.seen.add(method="GET", path=url.path, host=self.headers.get("Host"))
                if url.path == "/img":
                    return self.send(200, server.image, "image/png")
                if url.path == "/redirect":
                    return self.redirect(parse_qs(url.query)["to"][0])
                if url.path.startswith("/status/"):
                    return self.send(int(url.path.rsplit("/", 1)[1]), b"nope")
                if url.path == "/declared-big":
                    self.send_response(200)
                    self.send_header("Content-Length", str(10**12))
                    self.end_headers()
                    return
                if url.path == "/big":
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    chunk = b"\0" * 65536
                    try:
                        for _ in range(100_000):  # ~6 GB if nobody stops reading
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                            server.sent_bytes += len(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                if url.path == "/slow":
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    try:
                        for _ in range(1000):
                            self.wfile.write(b"x")
                            self.wfile.flush()
                            time.sleep(0.5)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                self.send(404, b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.seen.add(method="POST", path=self.path, host=self.headers.get("Host"), body=body,
                                headers={k.lower(): v for k, v in self.headers.items()})
                url = urlsplit(self.path)
                if url.path == "/redirect":  # a receiver that redirects (webhooks do not follow)
                    return self.redirect(parse_qs(url.query)["to"][0])
                posts = sum(r["method"] == "POST" for r in server.seen.requests)
                self.send(500 if posts <= server.fail_first else 204, b"")

        super().__init__(Routes, tls)


class Site(ThreadedServer):
    """``routes`` maps a path to ``(status, content_type, body)`` or just ``body`` (200, type guessed;
    a 301/302 body is the Location). Every request is recorded in ``hits`` as (path, Host header,
    User-Agent, monotonic time)."""

    def __init__(self, routes: dict[str, object] | None = None) -> None:
        self.routes: dict[str, object] = dict(routes or {})
        self.hits: list[tuple[str, str, str, float]] = []
        self._lock = threading.Lock()
        site = self

        class Routes(Handler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                with site._lock:
                    site.hits.append((path, self.headers.get("Host", ""), self.headers.get("User-Agent", ""),
                                      time.monotonic()))
                status, ctype, body = site.response(path)
                if status in (301, 302) and isinstance(body, str):
                    return self.send(status, b"", ctype, {"Location": body})
                self.send(status, body, ctype)

        super().__init__(Routes)

    def response(self, path: str) -> tuple[int, str, bytes | str]:
        route = self.routes.get(path)
        if route is None:
            return 404, "text/plain", b"not found"
        if isinstance(route, tuple):
            status, ctype, body = route
            return status, ctype, body.encode() if isinstance(body, str) and status not in (301, 302) else body
        body = route.encode() if isinstance(route, str) else route
        if path.endswith((".xml", ".xml.gz")):
            ctype = "application/xml"
        elif path.endswith(".txt"):
            ctype = "text/plain"
        elif body[:4] in (b"\x89PNG",) or body[:3] == b"\xff\xd8\xff":
            ctype = "image/png" if body[:4] == b"\x89PNG" else "image/jpeg"
        else:
            ctype = "text/html; charset=utf-8"
        return 200, ctype, body

    def paths(self) -> list[str]:
        with self._lock:
            return [hit[0] for hit in self.hits]


LOCAL = ["127.0.0.1/32"]


async def local_resolver(host: str, port: int) -> list[str]:
    """Every name is this machine (so a 'second origin' is reachable by name); nothing leaves it."""
    return ["127.0.0.1"]


def self_signed(tmp: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext] | None:
    """(server context, client context trusting it) for a certificate valid for ``name`` only."""
    if not shutil.which("openssl"):
        return None
    key, cert = tmp / f"{name}.key", tmp / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"],
                   check=True, capture_output=True)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client
