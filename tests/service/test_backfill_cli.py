"""`alttext backfill` as users run it: the real command, locally and through a running `alttext serve`."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.api import free_port
from tests.support.backfill import read_rows, write_images

ROOT = Path(__file__).resolve().parents[2]
ALTTEXT = str(Path(sys.executable).with_name("alttext"))
FIELDS = ("id", "existing_alt", "new_alt", "decision", "confidence", "warnings", "reasons", "error_code")


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "ALTTEXT_MODEL": "debug", **(env or {})}
    return subprocess.run([ALTTEXT, "backfill", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


@pytest.fixture
def images(tmp_path) -> Path:
    write_images(tmp_path / "imgs", {"a.png": "red", "b.png": "blue", "c/d.png": "red", "e.png": "green"})
    (tmp_path / "imgs" / "junk.png").write_bytes(b"not an image")
    return tmp_path / "imgs"


def test_cli_writes_the_report_and_a_summary(images, tmp_path):
    done = cli(str(images), "--out", str(tmp_path / "out.jsonl"))
    assert done.returncode == 0, done.stderr
    assert "5 items (5 this run)" in done.stderr and "fill 4" in done.stderr and "error 1" in done.stderr
    assert "errors: unsupported_media_type 1" in done.stderr and "images/s" in done.stderr
    again = cli(str(images), "--out", str(tmp_path / "out.jsonl"))
    assert "5 items (0 this run)" in again.stderr and "0 drafted" in again.stderr
    bad = cli(str(images), "--out", str(tmp_path / "out.txt"))
    assert bad.returncode == 2 and ".jsonl or .csv" in bad.stderr


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = {**os.environ, "ALTTEXT_MODEL": "debug", "ALTTEXT_DATA_DIR": str(tmp_path / "data")}
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([ALTTEXT, "serve", "--port", str(port)], env=env, cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                with urllib.request.urlopen(base + "/ready", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()[-2000:]
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_server_engine_gives_the_same_rows_as_the_local_one(images, tmp_path, server):
    (tmp_path / "m.csv").write_text(
        "id,src,existing_alt,caption,role\n"
        f"1,{images}/a.png,,Our red boat,\n2,{images}/b.png,IMG_0001.JPG,,\n3,{images}/c/d.png,,,decorative\n"
        f"4,{images}/junk.png,,,\n5,{images}/gone.png,,,\n6,{images}/e.png,Green sails in the harbour,,\n")
    local = cli(str(tmp_path / "m.csv"), "--out", str(tmp_path / "local.jsonl"))
    remote = cli(str(tmp_path / "m.csv"), "--out", str(tmp_path / "remote.jsonl"), "--server", server)
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr
    pick = lambda rows: [{k: r[k] for k in FIELDS} for r in rows]  # noqa: E731
    assert pick(read_rows(tmp_path / "remote.jsonl")) == pick(read_rows(tmp_path / "local.jsonl"))
    assert [r["decision"] for r in read_rows(tmp_path / "remote.jsonl")] == [
        "fill", "propose", "decorative", "error", "error", "keep"]


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_otherwise():
    import io
    from collections import Counter

    from service.backfill.runner import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    bar = Progress("auto", total=10, initial=2, every_s=10.0, stream=tty)
    bar.update(3, Counter(fill=5))
    bar.close()
    assert "5/10" in tty.getvalue() and "img/s" in tty.getvalue()
    log = io.StringIO()
    lines = Progress("auto", total=10, initial=0, every_s=0.0, stream=log)
    lines.update(4, Counter(fill=3, error=1))
    assert log.getvalue().startswith("backfill: 4/10 items") and "s left" in log.getvalue()
    assert "error 1, fill 3" in log.getvalue() and "\r" not in log.getvalue()
