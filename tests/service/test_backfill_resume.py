"""Crash and resume: SIGKILL the backfill mid-run, run it again, every item exactly once,
and nothing that was already done is drafted again."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from service.backfill.store import CheckpointMismatch
from models.base import WrappingDrafter
from models.debug import DebugDrafter
from tests.support.backfill import backfill, distinct_images, read_rows, write_images

WORKER = Path(__file__).resolve().parents[1] / "support" / "backfill_worker.py"


def pixels(path: Path) -> str:
    with Image.open(path) as im:
        return hashlib.sha256(im.convert("RGB").tobytes()).hexdigest()


def complete_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    text = path.read_text()
    return [json.loads(line) for line in text.split("\n")[:-1] if line]


def start(source: Path, out: Path, log: Path, tag: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), str(source), str(out), str(log), tag],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def kill_after(proc: subprocess.Popen, out: Path, rows: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while len(complete_lines(out)) < rows:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the backfill made no progress"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_sigkill_twice_then_resume_gives_every_item_exactly_once(tmp_path):
    images = distinct_images(tmp_path / "imgs", 96)
    out, log = tmp_path / "out.jsonl", tmp_path / "drafted.log"
    done_before: set[str] = set()
    for tag, at in (("run1", 20), ("run2", 55)):
        proc = start(tmp_path / "imgs", out, log, tag)
        kill_after(proc, out, at)
        done_before |= {row["id"] for row in complete_lines(out)}
        done_tag = tag
    proc = start(tmp_path / "imgs", out, log, "run3")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err

    rows = read_rows(out)
    assert [r["id"] for r in rows] == [p.name for p in images]  # each exactly once, in source order
    assert all(r["decision"] == "fill" for r in rows)
    drafted = [line.split() for line in log.read_text().splitlines()]
    by_run: dict[str, list[str]] = {}
    for tag, sha in drafted:
        by_run.setdefault(tag, []).append(sha)
    assert set(sha for _, sha in drafted) == {pixels(p) for p in images}
    # Nothing in the output before a kill was drafted by a later run ...
    done_pixels = {pixels(tmp_path / "imgs" / name) for name in done_before}
    assert not done_pixels & set(by_run["run3"])
    # ... and at most the batch in flight at each kill was drafted twice.
    assert len(drafted) - len(images) <= 2 * 8
    assert "backfill:" in err and "images/s" in err  # plain progress lines off a terminal
    assert done_tag == "run2"


def test_a_finished_run_resumes_to_nothing_and_a_lost_output_is_rebuilt(tmp_path):
    distinct_images(tmp_path / "imgs", 10)
    out = tmp_path / "out.csv"
    _, first, drafter = backfill(tmp_path / "imgs", out)
    summary, again, drafter2 = backfill(tmp_path / "imgs", out)
    assert again == first and drafter2.images == 0 and summary.new == 0
    out.unlink()  # the report went missing: rebuilt from the checkpoint, nothing drafted
    _, rebuilt, drafter3 = backfill(tmp_path / "imgs", out)
    assert rebuilt == first and drafter3.images == 0
    with out.open("ab") as fh:  # a torn last line (crash mid-write) is cut off
        fh.write(b"img-9999.png,/x,")
    _, repaired, _ = backfill(tmp_path / "imgs", out)
    assert repaired == first


class StopAtCall(WrappingDrafter):
    """Stops the run (as Ctrl-C would) when the model is called the ``n``-th time."""

    def __init__(self, inner, n: int) -> None:
        super().__init__(inner)
        self.n = n

    def draft(self, images, hints=None):
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt("stopped")
        return self.inner.draft(images, hints)


def test_after_a_resume_copies_of_images_done_before_are_not_drafted_again(tmp_path):
    colours = ["red", "blue", "green", "yellow", "grey", "black"]
    write_images(tmp_path / "imgs", {**{f"a-{i}.png": c for i, c in enumerate(colours)},
                                     **{f"b-{i}.png": c for i, c in enumerate(colours[:5])}, "c-0.png": "purple"})
    out = tmp_path / "out.jsonl"
    # Chunk one (a-*) is drafted and committed; chunk two (copies b-* and a new c-0) stops at
    # the model call for c-0, before it is committed.
    with pytest.raises(KeyboardInterrupt):
        backfill(tmp_path / "imgs", out, drafter=StopAtCall(DebugDrafter(), 2), batch_size=6)
    assert len(read_rows(out)) == 6
    # The resumed run takes the copies' drafts from the checkpoint: only c-0 goes to the model.
    summary, rows, drafter = backfill(tmp_path / "imgs", out, batch_size=6)
    assert drafter.images == 1 and summary.new == 6 and len(rows) == 12
    _, fresh, _ = backfill(tmp_path / "imgs", tmp_path / "fresh.jsonl", batch_size=6)
    assert rows == fresh


def test_a_changed_source_or_another_model_is_not_silently_mixed_in(tmp_path):
    distinct_images(tmp_path / "imgs", 4)
    out = tmp_path / "out.jsonl"
    backfill(tmp_path / "imgs", out)
    (tmp_path / "imgs" / "img-0000.png").rename(tmp_path / "imgs" / "renamed.png")
    with pytest.raises(CheckpointMismatch, match="source changed"):
        backfill(tmp_path / "imgs", out)
    _, rows, _ = backfill(tmp_path / "imgs", out, restart=True)
    assert [r["id"] for r in rows][:2] == ["img-0001.png", "img-0002.png"]
