"""`alttext eval --model openai:MODEL` runs like the offline model, against a real local server."""
from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from service.cli import app
from tests.support.images import COCO_FIXTURES
from tests.support.openai_server import FakeVLMServer


def test_eval_with_a_remote_model(tmp_path, monkeypatch):
    rows = [json.loads(line) for line in (COCO_FIXTURES / "references.jsonl").read_text().splitlines() if line][:3]
    (tmp_path / "images").mkdir()
    for row in rows:
        row["references"] = []  # no reference metrics: METEOR's Java start-up is not what is tested here
        shutil.copy(COCO_FIXTURES / row["image"], tmp_path / "images" / row["image"])
        row["image"] = f"images/{row['image']}"
    (tmp_path / "set.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.chdir(tmp_path)
    with FakeVLMServer() as server:
        server.reply = "Here is the alt text: A group of animals outdoors."
        monkeypatch.setenv("ALTTEXT_OPENAI_BASE_URL", server.base_url)
        result = CliRunner().invoke(app, [
            "eval", "--dataset", str(tmp_path / "set.jsonl"), "--model", "openai:tiny-vlm",
            "--systems", "draft-only", "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
            "--bootstrap", "20", "--no-progress", "--thumbnails", "none"])
    assert result.exit_code == 0, result.output
    assert len(server.bodies) == 3 and {b["model"] for b in server.bodies} == {"tiny-vlm"}
    samples = [json.loads(line) for line in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 3
    assert "A group of animals outdoors." in (tmp_path / "out" / "samples.jsonl").read_text()
    assert "openai:tiny-vlm" in (tmp_path / "out" / "results.json").read_text()
