"""A model that cannot be had: one line naming it, the cause and what to do; exit 1; no traceback."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.settings import get_settings
from tests.support.images import COCO_FIXTURES
from tests.support.openai_server import FakeVLMServer

IMAGE = str(COCO_FIXTURES / "000000555705.jpg")
runner = CliRunner()


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_missing_local_model(tmp_path):
    line = one_line_error(runner.invoke(app, ["describe", "--model", str(tmp_path / "nope"), IMAGE]))
    assert line.startswith("error model_unavailable: cannot load model") and "nope" in line
    assert "`alttext models`" in line


def test_uncached_hub_model_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    line = one_line_error(runner.invoke(app, ["describe", "--model", "alttext-tests/no-such-model", IMAGE]))
    assert "'alttext-tests/no-such-model'" in line and "local path" in line


def test_remote_server_down(monkeypatch):
    with FakeVLMServer() as server:
        base_url = server.base_url
    monkeypatch.setenv("ALTTEXT_OPENAI_BASE_URL", base_url)
    monkeypatch.setenv("ALTTEXT_OPENAI_MAX_RETRIES", "0")
    line = one_line_error(runner.invoke(app, ["describe", "--model", "openai:some-model", IMAGE]))
    assert line.startswith("error upstream_unavailable: cannot connect to") and "127.0.0.1" in line


def test_remote_model_describes(monkeypatch):
    with FakeVLMServer(models=("some-model",)) as server:
        server.reply = "The image shows two cats asleep on a pair of shoes."
        monkeypatch.setenv("ALTTEXT_OPENAI_BASE_URL", server.base_url)
        result = runner.invoke(app, ["describe", "--model", "openai:some-model", IMAGE])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{IMAGE}: Two cats asleep on a pair of shoes."
    assert server.bodies[0]["model"] == "some-model"


def test_debug_shows_the_traceback(tmp_path):
    result = runner.invoke(app, ["describe", "--debug", "--model", str(tmp_path / "nope"), IMAGE])
    assert result.exit_code != 0 and type(result.exception).__name__ == "ModelLoadError"
