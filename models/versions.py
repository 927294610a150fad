"""Leaf helper: which version of a distribution is installed, if any (imports nothing of ours)."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def installed_version(package: str) -> str | None:
    """The installed distribution's version, or None when it is not installed."""
    try:
        return version(package)
    except PackageNotFoundError:
        return None
