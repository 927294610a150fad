"""Leaf helpers: which version of a distribution is installed, and where an installed package's files
are (bundled weights, shared libraries), if at all (imports nothing of ours)."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path


def installed_version(package: str) -> str | None:
    """The installed distribution's version, or None when it is not installed."""
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def package_dir(module: str) -> Path | None:
    """The folder of an installed top-level package (where its bundled files sit), or None."""
    spec = find_spec(module)
    return Path(spec.origin).parent if spec is not None and spec.origin is not None else None
