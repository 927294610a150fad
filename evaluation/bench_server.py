"""Server processes for benchmarks and load tests: start one on 127.0.0.1, wait until it says
it is ready, stop it; read how much memory it holds.

The one home of the "start, poll /ready, stop" loop used by evaluation/bench_service.py (and
the soak in evaluation/bench_soak.py) and by the load and fault suites (tests/support/loadkit.py).
Standard library and httpx only, so tests can import it without pulling in torch.
"""
from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running(cmd: list[str], *, ready_url: str, log_path: Path, env: dict[str, str] | None = None,
            cwd: Path | None = None, timeout_s: float = 600.0, what: str = "server",
            stop_timeout_s: float = 30.0) -> Iterator[subprocess.Popen]:
    """Start ``cmd`` (stdout and stderr to ``log_path``), wait until GET ``ready_url`` answers
    200, yield the process, and stop it on exit (SIGTERM, then SIGKILL after ``stop_timeout_s``).
    Raises RuntimeError with the log's tail when the process exits or is not ready within
    ``timeout_s``."""
    import httpx

    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            failed = None
            try:
                answer = httpx.get(ready_url, timeout=5)
                if answer.status_code == 200:
                    break
                failed = _load_failure(answer)
            except httpx.HTTPError:
                pass
            if failed or proc.poll() is not None or time.monotonic() > deadline:
                if failed:
                    state = failed
                elif proc.returncode is not None:
                    state = f"exited with {proc.returncode}"
                else:
                    state = f"not ready in {timeout_s:.0f} s"
                raise RuntimeError(f"{what} did not start ({state}):\n" + Path(log_path).read_text()[-3000:])
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=stop_timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _load_failure(answer) -> str | None:
    """The reason from a /ready that says the model failed to load: `alttext serve` stays up to
    report it, so waiting longer would only wait out the start bound."""
    try:
        body = answer.json()
    except ValueError:
        return None
    return f"model failed to load: {body.get('detail')}" if isinstance(body, dict) and body.get("status") == "failed" else None


def status_kb(pid: int, field: str = "VmRSS") -> int:
    """A memory field of /proc/PID/status in KiB (VmRSS, RssAnon, RssFile, ...); 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid: int) -> int:
    """VmRSS of one process in KiB; 0 when it is gone."""
    return status_kb(pid, "VmRSS")


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, their children, ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])  # after "pid (comm) state": ppid
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree_rss_kb(pid: int, field: str = "VmRSS") -> int:
    """VmRSS (or another /proc status field) of ``pid`` and all its descendants, in KiB (shared
    pages count once per process)."""
    return sum(status_kb(p, field) for p in [pid, *descendants(pid)])
