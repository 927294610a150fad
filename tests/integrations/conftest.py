from __future__ import annotations

import pytest

from tests.support.cms import AlttextServer


@pytest.fixture(scope="session")
def alttext_server(tmp_path_factory):
    """One running `alttext serve` (keys required) shared by the CMS suites."""
    server = AlttextServer(tmp_path_factory.mktemp("alttext-serve"), {"ALTTEXT_REQUIRE_API_KEY": "true"})
    server.key = server.create_key("cms-tests", rate_limit=0)
    server.start()
    yield server
    server.stop()
