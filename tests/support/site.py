"""A real little web site on 127.0.0.1 for crawl and backfill tests: a dict of path -> response."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class Site:
    """``routes`` maps a path to ``(status, content_type, body)`` or just ``body`` (200, type guessed).
    Every request is recorded in ``hits`` as (path, Host header, User-Agent, monotonic time)."""

    def __init__(self, routes: dict[str, object] | None = None) -> None:
        self.routes: dict[str, object] = dict(routes or {})
        self.hits: list[tuple[str, str, str, float]] = []
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                with site._lock:
                    site.hits.append((path, self.headers.get("Host", ""), self.headers.get("User-Agent", ""),
                                      time.monotonic()))
                status, ctype, body = site.response(path)
                self.send_response(status)
                if status in (301, 302) and isinstance(body, str):
                    self.send_header("Location", body)
                    body = b""
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

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

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        with self._lock:
            return [hit[0] for hit in self.hits]

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


LOCAL = ["127.0.0.1/32"]


async def local_resolver(host: str, port: int) -> list[str]:
    """Every name is this machine (so a 'second origin' is reachable by name); nothing leaves it."""
    return ["127.0.0.1"]
