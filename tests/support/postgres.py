"""A throwaway PostgreSQL server for tests, started from the machine's initdb/pg_ctl.

Skips (with the reason) where PostgreSQL's server programs are not installed; on Debian,
`apt-get install postgresql` provides them. As root, the cluster runs as the `postgres` user,
because PostgreSQL refuses to run as root.
"""
from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from contextlib import contextmanager

from tests.support.api import free_port


def _bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def unavailable() -> str | None:
    """Why no server can be started here, or None."""
    if importlib.util.find_spec("psycopg") is None:
        return "the PostgreSQL driver psycopg is not installed (pip install 'psycopg[binary]')"
    if not (_bin("initdb") and _bin("pg_ctl")):
        return "PostgreSQL server programs (initdb, pg_ctl) are not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
        if not shutil.which("runuser"):
            return "running as root without runuser"
    return None


@contextmanager
def postgres_server():
    """Yields a SQLAlchemy URL for an empty database on a fresh local server."""
    folder = tempfile.mkdtemp(prefix="alttext-pg-")
    data, port = os.path.join(folder, "data"), free_port()
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    run = lambda *args: subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)  # noqa: E731
    try:
        run(_bin("initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(_bin("pg_ctl"), "-D", data, "-o", options, "-l", os.path.join(folder, "log"), "-w", "start")
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            run(_bin("pg_ctl"), "-D", data, "-m", "immediate", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
