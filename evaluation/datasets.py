"""Evaluation sets as JSON Lines: id, image (relative to the file), caption, context, references."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

SHIPPED = ("concadia", "coco")


@dataclass(frozen=True)
class Sample:
    id: str
    image: Path
    caption: str | None
    context: str | None
    references: list[str]


def data_root() -> Path | None:
    """ALTTEXT_EVAL_DATA, else ../shared/data beside the checkout when it exists."""
    configured = os.environ.get("ALTTEXT_EVAL_DATA")
    if configured:
        return Path(configured)
    beside = Path(__file__).resolve().parents[2] / "shared" / "data"
    return beside if beside.is_dir() else None


def resolve(dataset: str, split: str = "dev") -> Path:
    """A shipped set's name or a path to a JSON Lines file."""
    if dataset in SHIPPED:
        root = data_root()
        if root is None:
            raise FileNotFoundError(
                f"dataset {dataset!r} needs the evaluation data folder: set ALTTEXT_EVAL_DATA to the folder "
                "holding concadia/ and coco/"
            )
        return root / dataset / f"{split}.jsonl"
    return Path(dataset)


def load_samples(dataset: str, split: str = "dev", limit: int | None = None) -> list[Sample]:
    path = resolve(dataset, split)
    if not path.is_file():
        raise FileNotFoundError(f"no dataset file at {path}")
    samples = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            samples.append(Sample(
                id=str(row["id"]), image=path.parent / row["image"], caption=row.get("caption"),
                context=row.get("context"), references=list(row.get("references") or []),
            ))
            if limit and len(samples) >= limit:
                break
    return samples
