"""Long fuzzing with atheris (libFuzzer) of the image loader, text sanitiser and merge step,
using the same targets as the fast hypothesis tests (tests/support/fuzz_targets.py).

    .venv/bin/python scripts/fuzz.py merge_step -max_total_time=300

A crash leaves crash-<hash> in the current folder: copy it to tests/fixtures/fuzz/<target>/
and tests/service/test_fuzz.py replays it in every run from then on. Seeds come from that
folder and, for the loader, the COCO test photos."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import atheris  # noqa: E402

with atheris.instrument_imports():  # coverage feedback from our code and what it imports first here
    from tests.support.fuzz_targets import TARGETS  # noqa: E402


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        raise SystemExit(f"usage: fuzz.py {{{','.join(TARGETS)}}} [libFuzzer options]")
    name = sys.argv[1]
    target = TARGETS[name]
    seeds = ROOT / "tests" / "fixtures" / "fuzz" / name
    seeds.mkdir(parents=True, exist_ok=True)
    work = ROOT / "runs" / "fuzz" / f"{name}-corpus"  # libFuzzer adds new inputs to the first folder
    work.mkdir(parents=True, exist_ok=True)
    corpus = [str(work), str(seeds)]
    if name == "image_loader":
        corpus.append(str(ROOT / "tests" / "fixtures" / "coco"))
    atheris.Setup([sys.argv[0], *sys.argv[2:], *corpus], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
