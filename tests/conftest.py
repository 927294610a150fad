"""Fixtures only; shared helpers live in tests/support/."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def offline_drafter():
    from models.offline.backend import OfflineDrafter

    return OfflineDrafter()
