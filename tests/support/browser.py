"""Headless Chromium + axe-core for accessibility tests: one place to start the browser,
load a page or file, inject axe, and read its violations (or drive the keyboard).

Chromium is Debian's `chromium` package; axe-core is pinned in tests/support/axe
(package.json + package-lock.json, installed by `npm ci` from scripts/setup-browser.sh,
which scripts/test.sh runs). The browser is driven over the Chrome DevTools Protocol
with `websocket-client`; no browser build is ever downloaded.

    with Browser() as browser:
        violations = browser.axe(Path("page.html"))          # or a URL, or html=...
        browser.press("Tab"); browser.evaluate("document.activeElement.id")

`require_browser()` skips a test when Chromium or axe is missing, and fails it under CI=true.
The browser cannot reach the network: every host name resolves to nothing except 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

AXE_DIR = Path(__file__).parent / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
    "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
    "--disable-extensions", "--disable-sync", "--metrics-recording-only", "--mute-audio",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--allow-file-access-from-files", "--window-size=1280,900",
)


def chromium_path() -> str | None:
    override = os.environ.get("ALTTEXT_CHROMIUM")
    if override:
        return override
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def missing() -> str | None:
    """Why the harness cannot run here, or None."""
    try:
        import websocket  # noqa: F401
    except ImportError:
        return "websocket-client is not installed (scripts/setup.sh --dev)"
    if chromium_path() is None:
        return "Chromium is not installed (scripts/setup-browser.sh installs Debian's chromium)"
    if not AXE_JS.exists():
        return f"axe-core is not installed in {AXE_DIR} (run `npm ci` there, or scripts/setup-browser.sh)"
    return None


def require_browser() -> None:
    """Skip the calling test with the reason when the harness is missing; under CI=true, fail."""
    import pytest

    reason = missing()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the browser harness is missing: {reason}")
        pytest.skip(reason)


class BrowserError(RuntimeError):
    pass


class Browser:
    def __init__(self, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self._proc: subprocess.Popen | None = None
        self._ws = None
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    # --- life cycle ---------------------------------------------------------------------
    def __enter__(self) -> Browser:
        import websocket

        binary = chromium_path()
        if binary is None:
            raise BrowserError("Chromium not found")
        # Chromium's helper processes may still write to the profile for a moment after the
        # browser exits: the profile's removal must not fail the test that used it.
        self._profile = tempfile.TemporaryDirectory(prefix="alttext-chromium-", ignore_cleanup_errors=True)
        self._proc = subprocess.Popen(
            [binary, *FLAGS, "--remote-debugging-port=0", f"--user-data-dir={self._profile.name}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout_s
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise BrowserError("Chromium did not open its DevTools port")
            time.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=self.timeout_s) as response:
            targets = json.load(response)
        page = next(t for t in targets if t.get("type") == "page")
        self._ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=self.timeout_s,
                                               suppress_origin=True)
        self.send("Page.enable")
        self.send("Runtime.enable")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._ws is not None:
            try:
                self._ws.close()
            finally:
                self._ws = None
        if self._proc is not None:
            # The browser and its zygote, GPU and renderer processes: one process group.
            self._signal_group(signal.SIGTERM)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            self._signal_group(signal.SIGKILL)
            self._proc.wait()
            self._proc = None
        if getattr(self, "_profile", None) is not None:
            self._profile.cleanup()
            self._profile = None

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self._proc.pid, sig)
        except ProcessLookupError:
            pass

    # --- protocol -----------------------------------------------------------------------
    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next_id += 1
        ident = self._next_id
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._events.append(message)

    def _wait_event(self, name: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            for i, event in enumerate(self._events):
                if event["method"] == name:
                    return self._events.pop(i)
            self._events.append(json.loads(self._ws.recv()))
        raise BrowserError(f"timed out waiting for {name}")

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": await_promise,
                                                "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"page script failed: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    # --- pages --------------------------------------------------------------------------
    def load(self, target: str | Path | None = None, html: str | None = None) -> None:
        """Open a file, a URL, or an HTML string (written to a temporary file), and wait for load."""
        if html is not None:
            self._tmp_page = Path(self._profile.name) / "page.html"
            self._tmp_page.write_text(html, encoding="utf-8")
            target = self._tmp_page
        url = Path(target).resolve().as_uri() if isinstance(target, Path) else str(target)
        self._events.clear()
        self.send("Page.navigate", {"url": url})
        self._wait_event("Page.loadEventFired")

    def axe(self, target: str | Path | None = None, html: str | None = None,
            options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """axe-core's violations for the page (all rules axe runs by default unless
        ``options`` say otherwise)."""
        if target is not None or html is not None:
            self.load(target, html=html)
        self.evaluate(AXE_JS.read_text(encoding="utf-8"))
        run = f"axe.run(document, {json.dumps(options or {})}).then(r => JSON.stringify(r.violations))"
        return json.loads(self.evaluate(run, await_promise=True))

    def press(self, key: str, shift: bool = False) -> None:
        """One key press (Tab, Enter, Space ...) through the browser's input pipeline."""
        codes = {"Tab": 9, "Enter": 13, " ": 32, "Space": 32, "Escape": 27}
        key_name = " " if key == "Space" else key
        base = {"key": key_name, "code": "Space" if key_name == " " else key,
                "windowsVirtualKeyCode": codes.get(key, 0), "modifiers": 8 if shift else 0}
        if key in ("Enter",):
            base["text"] = "\r"
        elif key_name == " ":
            base["text"] = " "
        self.send("Input.dispatchKeyEvent", {"type": "keyDown", **base})
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", **base})
