"""One-way backend registry and the debug backend: names map to lazy import paths, choosing a
backend imports only that backend, and the debug backend answers deterministically."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from models import registry
from models.base import Capabilities, Drafter
from models.debug import DebugDrafter
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BEARS = ROOT / "tests" / "fixtures" / "coco" / "000000020247.jpg"


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_choosing_debug_or_offline_imports_neither_torch_nor_the_other_backend():
    debug = _modules_after("from models.registry import load_drafter\nfrom PIL import Image\n"
                           "d = load_drafter('debug'); d.warm_up(); d.draft([Image.new('RGB', (8, 8))])")
    assert not {"torch", "transformers", "models.offline.backend", "models.transformers_backend"} & debug
    offline = _modules_after("from models.registry import load_drafter\nload_drafter('offline')")
    assert "models.offline.backend" in offline
    assert not {"torch", "transformers", "models.transformers_backend", "models.debug"} & offline


def test_names_prefixes_and_the_transformers_fallback(monkeypatch):
    assert registry.backend_name("offline") == "offline"
    assert registry.backend_name("debug") == "debug"
    assert registry.backend_name("Salesforce/blip-image-captioning-base") == "transformers"
    assert registry.backend_name("openai:gpt-4o-mini") == "openai"  # registered by the openai backend
    assert registry.backend_name("mine:gpt-4o-mini") == "transformers"  # no such prefix registered
    monkeypatch.setitem(registry.PREFIXES, "mine", "models.debug:DebugDrafter")
    assert registry.backend_name("mine:gpt-4o-mini") == "mine"
    assert registry.backend_name("mine:") == "transformers"
    assert isinstance(registry.load_drafter("mine:gpt-4o-mini"), DebugDrafter)
    assert {"openai:MODEL", "mine:MODEL"} <= {info.name for info in registry.describe_backends()}
    monkeypatch.setitem(registry.BACKENDS, "broken", "models.draft:Draft")
    with pytest.raises(TypeError, match="not a models.base.Drafter"):
        registry.load_drafter("broken")


def test_unknown_options_are_refused_not_ignored():
    with pytest.raises(TypeError):
        registry.load_drafter("debug", batch_size=4)


def test_each_backend_takes_only_its_own_settings():
    values = {"_env_file": None, "model_revision": "abc", "device": "cpu", "batch_size": 4}
    assert Settings(model="offline", **values).drafter_options() == {}
    assert Settings(model="debug", **values).drafter_options() == {}
    assert Settings(model="org/captioner", **values).drafter_options() == {
        "revision": "abc", "device": "cpu", "batch_size": 4, "keep_freed_memory": True}


def test_the_contract_declares_capabilities_and_a_no_op_warm_up():
    class Minimal(Drafter):
        model = None

        def draft(self, images, hints=None):
            return []

    drafter = Minimal()
    assert drafter.warm_up() is None
    assert drafter.capabilities == Capabilities(takes_hints=False, batch_size=8, device="cpu")
    assert DebugDrafter().capabilities.takes_hints is False


def test_debug_drafts_name_size_and_main_colour_deterministically():
    drafter = registry.load_drafter("debug")
    red = Image.new("RGB", (24, 16), (220, 30, 30))
    mostly_blue = Image.new("RGB", (100, 50), (30, 60, 220))
    mostly_blue.paste((245, 245, 245), (0, 0, 40, 50))  # 40% white, 60% blue
    first = drafter.draft([red, mostly_blue], ["ignored hint", None])
    assert [d.text for d in first] == ["A 24 by 16 image, mostly red.", "A 100 by 50 image, mostly blue."]
    assert [d.text for d in drafter.draft([red, mostly_blue])] == [d.text for d in first]
    assert first[0].model.backend == "debug" and first[0].evidence.greyscale is False
    assert drafter.draft([Image.new("RGB", (8, 8), (128, 128, 128))])[0].evidence.greyscale is True


def test_cli_describe_with_the_debug_backend(monkeypatch):
    from service.cli import app
    from service.settings import get_settings

    monkeypatch.setenv("ALTTEXT_MODEL", "debug")
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(app, ["describe", str(BEARS), "--json"])
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    row = json.loads(out.output)
    assert row["result"]["alt"] == "A 640 by 457 image, mostly grey."
    assert row["result"]["draft"]["model"] == {"id": "debug", "revision": "1", "backend": "debug"}
