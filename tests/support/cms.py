"""Real CMS instances and a real `alttext serve` for the CMS integration tests (tests/integrations).

``AlttextServer`` runs `alttext serve` on a free port with its own data dir. ``WordPressSite`` brings up
Debian's WordPress (copied into a scratch dir, so no root is needed after apt) on MariaDB and PHP's
built-in server, installs it and activates the plugin from integrations/wordpress/alttext.
``WagtailSite`` runs the Wagtail app's test project (integrations/wagtail/testproject) under Django's
development server with an admin user. All are used by the tests and by scripts/cms-screenshots.py.
"""
from __future__ import annotations

import base64
import http.cookiejar
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.support.api import free_port

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "integrations" / "wordpress" / "alttext"
WP_RUN = Path(__file__).with_name("wp_run.php")
DEBIAN_WORDPRESS = Path("/usr/share/wordpress")
WORDPRESS_PACKAGES = "wordpress php-cli php-mysql php-gd php-curl php-xml php-mbstring mariadb-server"


def missing_or_fail(what: str, reason: str | None) -> None:
    """Skip when a CMS cannot run here; under CI=true that is a failure (the set-up must install it)."""
    import pytest

    if reason is None:
        return
    message = f"{what}: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: scripts/setup.sh --dev should have installed it)")
    pytest.skip(message)


def wordpress_missing() -> str | None:
    needed = {"php": shutil.which("php"), "mariadbd": shutil.which("mariadbd") or (
        "/usr/sbin/mariadbd" if Path("/usr/sbin/mariadbd").exists() else None),
        "mariadb-install-db": shutil.which("mariadb-install-db"),
        "Debian's wordpress": str(DEBIAN_WORDPRESS) if (DEBIAN_WORDPRESS / "wp-load.php").exists() else None}
    absent = [name for name, path in needed.items() if not path]
    return f"not installed: {', '.join(absent)} (apt-get install {WORDPRESS_PACKAGES})" if absent else None


def _wait(url: str, proc: subprocess.Popen, log: Path, seconds: float, ok=lambda status: status == 200) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if ok(resp.status):
                    return
        except urllib.error.HTTPError as err:
            if ok(err.code):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {seconds} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen | None) -> None:
    """Stop a server and the workers it forked (php -S workers outlive their parent)."""
    if proc is None or proc.poll() is not None:
        return
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True).stdout.split()
    proc.terminate()
    for pid in children:
        try:
            os.kill(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class AlttextServer:
    """`alttext serve` as a separate process: the debug backend when this checkout has one, else offline."""

    def __init__(self, workdir: Path, env: dict | None = None) -> None:
        self.data = workdir
        self.data.mkdir(parents=True, exist_ok=True)
        self.alttext = str(Path(sys.executable).with_name("alttext"))
        self.env = {**os.environ, "ALTTEXT_DATA_DIR": str(self.data), **(env or {})}
        self.env.setdefault("ALTTEXT_MODEL", "debug" if self._has_debug_backend() else "offline")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = self.data / "server.log"
        self.proc: subprocess.Popen | None = None
        self.key = ""

    def _has_debug_backend(self) -> bool:
        out = subprocess.run([self.alttext, "models"], capture_output=True, text=True, cwd=ROOT,
                             env={**os.environ, "ALTTEXT_DATA_DIR": str(self.data)}).stdout
        return any(line.split()[:1] == ["debug"] for line in out.splitlines())

    def create_key(self, name: str, rate_limit: int | None = None) -> str:
        cmd = [self.alttext, "keys", "create", name] + ([] if rate_limit is None else ["--rate-limit", str(rate_limit)])
        return subprocess.run(cmd, env=self.env, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    def start(self) -> "AlttextServer":
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([self.alttext, "serve", "--port", str(self.port)], cwd=ROOT, env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT)
        _wait(f"{self.base}/ready", self.proc, self.log, 180)
        return self

    def ready(self) -> dict:
        with urllib.request.urlopen(f"{self.base}/ready", timeout=5) as resp:
            return json.loads(resp.read())

    def describe(self, image: Path, **fields: str) -> dict:
        """The service's own answer for an image (what the CMS must end up storing)."""
        body = {"image_base64": base64.b64encode(image.read_bytes()).decode(), **fields}
        req = urllib.request.Request(f"{self.base}/v1/alt-text", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {self.key}"} if self.key else {})})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        _stop(self.proc)


class WordPressSite:
    """A fresh WordPress 6.1 (Debian's package) with the alttext plugin active."""

    ADMIN, PASSWORD = "admin", "admin-Passw0rd!"

    def __init__(self, workdir: Path) -> None:
        self.tmp = workdir
        self.root = workdir / "wordpress"
        self.run_dir = workdir / "run"
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.base = f"http://{self.host}"
        self.procs: list[subprocess.Popen] = []
        self.app_password = ""

    # -- life cycle -------------------------------------------------------------------------------
    def start(self, service_url: str, api_key: str = "") -> "WordPressSite":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(DEBIAN_WORDPRESS, self.root, symlinks=True)
        for name in ("wp-config.php", ".htaccess"):
            (self.root / name).unlink(missing_ok=True)
        (self.root / "wp-content" / "uploads").mkdir(parents=True, exist_ok=True)
        shutil.copytree(PLUGIN, self.root / "wp-content" / "plugins" / "alttext")
        self._start_mariadb()
        self._write_config()
        log = self.tmp / "php-server.log"
        with open(log, "w") as out:
            php = subprocess.Popen(["php", "-d", "upload_max_filesize=32M", "-d", "post_max_size=40M", "-S", self.host,
                                    "-t", str(self.root)], env={**os.environ, "PHP_CLI_SERVER_WORKERS": "4"},
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(php)
        _wait(f"{self.base}/readme.html", php, log, 20)
        form = urllib.parse.urlencode({"weblog_title": "Harbour Street notes", "user_name": self.ADMIN,
                                       "admin_password": self.PASSWORD, "admin_password2": self.PASSWORD,
                                       "admin_email": "admin@example.org", "blog_public": "0", "language": ""})
        with urllib.request.urlopen(f"{self.base}/wp-admin/install.php?step=2", data=form.encode(), timeout=60) as resp:
            page = resp.read().decode()
        if "<h1>Success!</h1>" not in page:
            raise RuntimeError("WordPress install failed:\n" + page[-2000:])
        out = self.php("activate", service_url, api_key)
        self.app_password = out["password"]
        return self

    def _start_mariadb(self) -> None:
        user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
        datadir, sock = self.tmp / "mysql", self.run_dir / "mysqld.sock"
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={datadir}", f"--user={user}",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True)
        mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        log = self.tmp / "mysqld.err"
        proc = subprocess.Popen([mariadbd, "--no-defaults", f"--datadir={datadir}", f"--user={user}", f"--socket={sock}",
                                 f"--pid-file={self.run_dir / 'mysqld.pid'}", "--skip-networking",
                                 f"--log-error={log}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        deadline = time.monotonic() + 30
        while subprocess.run(["mariadb", "--no-defaults", "-S", str(sock), "-uroot", "-e", "select 1"],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("mariadbd did not start:\n" + (log.read_text() if log.exists() else ""))
            time.sleep(0.1)
        subprocess.run(["mariadb", "--no-defaults", "-S", str(sock), "-uroot", "-e",
                        "CREATE DATABASE wp CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"], check=True)

    def _write_config(self) -> None:
        keys = "".join(f"define('{k}', 'test-only-{k}');\n" for k in (
            "AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY", "AUTH_SALT", "SECURE_AUTH_SALT",
            "LOGGED_IN_SALT", "NONCE_SALT"))
        (self.root / "wp-config.php").write_text(f"""<?php
define('DB_NAME', 'wp'); define('DB_USER', 'root'); define('DB_PASSWORD', '');
define('DB_HOST', 'localhost:{self.run_dir / "mysqld.sock"}');
define('DB_CHARSET', 'utf8mb4'); define('DB_COLLATE', '');
$table_prefix = 'wp_';
define('WP_HOME', '{self.base}'); define('WP_SITEURL', '{self.base}');
{keys}
// application passwords need HTTPS or a local environment
define('WP_ENVIRONMENT_TYPE', 'local');
define('WP_HTTP_BLOCK_EXTERNAL', true); define('DISABLE_WP_CRON', true); define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_DEBUG', true); define('WP_DEBUG_DISPLAY', false); define('WP_DEBUG_LOG', '{self.tmp / "wp-debug.log"}');
if (!defined('ABSPATH')) define('ABSPATH', __DIR__ . '/');
require_once ABSPATH . 'wp-settings.php';
""")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            _stop(proc)
        self.procs.clear()

    # -- driving it -------------------------------------------------------------------------------
    def php(self, *args: str, check: bool = True) -> dict | subprocess.CompletedProcess:
        """Run tests/support/wp_run.php inside this WordPress; JSON ops return the parsed output."""
        proc = subprocess.run(["php", str(WP_RUN), *args], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "WP_ROOT": str(self.root), "WP_HOST": self.host})
        if args[0] == "wp":
            return proc
        if check and proc.returncode != 0:
            raise RuntimeError(f"wp_run.php {args[0]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return json.loads(proc.stdout)

    def cron(self) -> None:
        """WordPress's own cron runner for due events (what a site's system cron calls)."""
        subprocess.run(["php", str(self.root / "wp-cron.php")], check=True, capture_output=True, timeout=300,
                       cwd=self.root, env={**os.environ, "HTTP_HOST": self.host})

    def rest(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
        token = base64.b64encode(f"{self.ADMIN}:{self.app_password}".encode()).decode()
        req = urllib.request.Request(f"{self.base}/wp-json{path}", data=body, method=method,
                                     headers={"Authorization": f"Basic {token}", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def create_post(self, title: str, content: str) -> int:
        status, post = self.rest("POST", "/wp/v2/posts", json.dumps(
            {"title": title, "content": content, "status": "publish"}).encode(), {"Content-Type": "application/json"})
        assert status == 201, post
        return post["id"]

    def upload(self, image: Path, filename: str, **params: str) -> tuple[int, dict]:
        """Upload through the REST API as the block editor does (raw body, Content-Disposition)."""
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        return self.rest("POST", f"/wp/v2/media{query}", image.read_bytes(), {
            "Content-Type": "image/jpeg" if filename.lower().endswith((".jpg", ".jpeg")) else "image/png",
            "Content-Disposition": f'attachment; filename="{filename}"'})

    def login(self) -> urllib.request.OpenerDirector:
        """A cookie-carrying opener logged in as the admin (wp-login.php, as a browser does); its
        cookies are in ``self.cookies``."""
        jar = self.cookies = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        opener.open(f"{self.base}/wp-login.php", timeout=30).read()
        form = urllib.parse.urlencode({"log": self.ADMIN, "pwd": self.PASSWORD, "testcookie": "1",
                                       "redirect_to": f"{self.base}/wp-admin/"}).encode()
        page = opener.open(f"{self.base}/wp-login.php", data=form, timeout=30).read().decode()
        if "wp-admin-bar" not in page and "Dashboard" not in page:
            raise RuntimeError("login failed")
        return opener


class WagtailSite:
    """integrations/wagtail/testproject on SQLite under `manage.py runserver` (DEBUG, so it serves the
    admin's static files), talking to ``service``; ``manage(...)`` runs management commands in it."""

    APP = ROOT / "integrations" / "wagtail"
    ADMIN, PASSWORD = "admin", "admin-Passw0rd!"

    def __init__(self, workdir: Path, service: AlttextServer) -> None:
        self.tmp = workdir
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "testproject.settings", "WAGTAIL_DEBUG": "1",
                    "WAGTAIL_DB": str(self.tmp / "wagtail.sqlite3"), "WAGTAIL_MEDIA": str(self.tmp / "media"),
                    "ALTTEXT_URL": service.base, "ALTTEXT_API_KEY": service.key, "ALTTEXT_TIMEOUT": "120"}
        self.proc: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        run = subprocess.run([sys.executable, "-m", "django", *args], cwd=self.APP, env=self.env,
                             capture_output=True, text=True, timeout=300)
        if run.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{run.stdout}\n{run.stderr}")
        return run.stdout

    def start(self) -> "WagtailSite":
        self.manage("migrate", "-v", "0")
        self.manage("shell", "-c", "from django.contrib.auth import get_user_model; "
                    f"get_user_model().objects.create_superuser({self.ADMIN!r}, 'admin@example.org', {self.PASSWORD!r})")
        log = self.tmp / "wagtail-server.log"
        with open(log, "w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "django", "runserver", "--noreload",
                                          f"127.0.0.1:{self.port}"], cwd=self.APP, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT)
        _wait(f"{self.base}/admin/login/", self.proc, log, 60)
        return self

    def add_image(self, path: Path, title: str, description: str = "") -> None:
        """Save an image as the admin's upload form does (the app's save hook runs)."""
        self.manage("shell", "-c", "from django.core.files.images import ImageFile\n"
                    "from wagtail.images import get_image_model\n"
                    f"get_image_model().objects.create(title={title!r}, description={description!r}, "
                    f"file=ImageFile(open({str(path)!r}, 'rb'), name={path.name!r}))")

    def seed_review_screen(self, older: Path, photo: Path) -> None:
        """What the alt-text screen is shown with: an older image titled by its file name (so its
        description is poor) put through the backfill, then a new upload with a real title."""
        self.add_image(older, "IMG_0001", description="IMG_0001")
        self.manage("alttext_backfill")
        self.add_image(photo, "Milo and Luna guarding the front door")

    def login(self) -> tuple[urllib.request.OpenerDirector, http.cookiejar.CookieJar]:
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = browser.open(f"{self.base}/admin/login/", timeout=30).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        browser.open(urllib.request.Request(f"{self.base}/admin/login/", data=urllib.parse.urlencode(
            {"username": self.ADMIN, "password": self.PASSWORD, "csrfmiddlewaretoken": token}).encode(),
            headers={"Referer": f"{self.base}/admin/login/"}), timeout=30).read()
        if not any(c.name == "sessionid" for c in jar):
            raise RuntimeError("Wagtail login failed")
        return browser, jar

    def stop(self) -> None:
        _stop(self.proc)
