"""Small real HTTP(S) servers on 127.0.0.1 for fetch and webhook tests."""
from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def add(self, **row) -> None:
        with self.lock:
            self.requests.append(row)


class LocalServer:
    """Routes: /img (a PNG), /redirect?to=URL, /status/N, /big (endless chunked body),
    /declared-big (huge Content-Length), /slow (drips a byte every 0.5 s), /hook (records a POST;
    the first ``fail_first`` POSTs get 500; a POST to /redirect?to=URL gets a 302)."""

    def __init__(self, image: bytes = b"", *, tls: ssl.SSLContext | None = None, fail_first: int = 0) -> None:
        self.image, self.fail_first = image, fail_first
        self.seen = Recorder()
        self.sent_bytes = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                server.seen.add(method="GET", path=url.path, host=self.headers.get("Host"))
                if url.path == "/img":
                    return self._send(200, server.image, "image/png")
                if url.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", parse_qs(url.query)["to"][0])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if url.path.startswith("/status/"):
                    return self._send(int(url.path.rsplit("/", 1)[1]), b"nope", "text/plain")
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
                self._send(404, b"", "text/plain")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.seen.add(method="POST", path=self.path, host=self.headers.get("Host"), body=body,
                                headers={k.lower(): v for k, v in self.headers.items()})
                url = urlsplit(self.path)
                if url.path == "/redirect":  # a receiver that redirects (webhooks do not follow)
                    self.send_response(302)
                    self.send_header("Location", parse_qs(url.query)["to"][0])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                posts = sum(r["method"] == "POST" for r in server.seen.requests)
                self._send(500 if posts <= server.fail_first else 204, b"", "text/plain")

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if tls else "http"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


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
