"""The long attack run: only with ALTTEXT_ATTACK=1 (scripts/attack.sh sets it)."""
from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config, items):
    if os.environ.get("ALTTEXT_ATTACK") == "1":
        return
    skip = pytest.mark.skip(reason="long attack run: scripts/attack.sh (ALTTEXT_ATTACK=1)")
    for item in items:
        if "tests/attack/" in str(item.fspath):
            item.add_marker(skip)
