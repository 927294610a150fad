"""Evaluation sets.

Two formats, one ``Sample`` shape:

- JSON Lines, one object per image: ``id``, ``image`` (relative to the file's folder),
  ``caption``, ``context``, ``references`` (list of strings); other fields are kept in
  ``Sample.meta``. This is the format of the shipped sets (``../shared/data/README.md``).
- COCO caption annotations (``captions_*.json``: ``images`` + ``annotations``), with the
  image files in ``image_root`` (default: the JSON file's folder, or its ``images/``).

``--dataset`` is a shipped set's name (``concadia``, ``coco``: read from the data folder
setting) or a path to a file in either format.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

SHIPPED = ("concadia", "coco")


@dataclass(frozen=True)
class Sample:
    id: str
    image: Path
    caption: str | None
    context: str | None
    references: list[str]
    meta: dict = field(default_factory=dict, compare=False)


def data_root() -> Path | None:
    """ALTTEXT_EVAL_DATA, else ../shared/data beside the checkout when it exists."""
    configured = os.environ.get("ALTTEXT_EVAL_DATA")
    if configured:
        return Path(configured)
    beside = Path(__file__).resolve().parents[2] / "shared" / "data"
    return beside if beside.is_dir() else None


def resolve(dataset: str, split: str = "dev") -> Path:
    """A shipped set's name or a path to a JSON Lines / COCO JSON file."""
    if dataset in SHIPPED:
        root = data_root()
        if root is None:
            raise FileNotFoundError(
                f"dataset {dataset!r} needs the evaluation data folder: set ALTTEXT_EVAL_DATA to the folder "
                "holding concadia/ and coco/ (or pass a path to a JSON Lines file)"
            )
        return root / dataset / f"{split}.jsonl"
    return Path(dataset)


def _text(value) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _references(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    return [r.strip() for r in value if isinstance(r, str) and r.strip()]


def read_jsonl(path: Path, limit: int | None = None) -> list[Sample]:
    samples: list[Sample] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                sample_id, image = str(row["id"]), row["image"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a dataset row (need id and image): {exc}") from exc
            meta = {k: v for k, v in row.items() if k not in {"id", "image", "caption", "context", "references"}}
            samples.append(Sample(
                id=sample_id, image=path.parent / image, caption=_text(row.get("caption")),
                context=_text(row.get("context")), references=_references(row.get("references")), meta=meta,
            ))
            if limit and len(samples) >= limit:
                break
    return samples


def read_coco_captions(path: Path, image_root: Path | None = None, limit: int | None = None) -> list[Sample]:
    """COCO-format caption annotations: every image with its captions as references."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise ValueError(f"{path}: not COCO caption annotations (need 'images' and 'annotations')")
    if image_root is None:
        image_root = path.parent / "images" if (path.parent / "images").is_dir() else path.parent
    captions: dict = defaultdict(list)
    for ann in data["annotations"]:
        captions[ann["image_id"]].append(" ".join(str(ann.get("caption", "")).split()))
    samples = []
    for image in sorted(data["images"], key=lambda im: str(im["id"])):
        meta = {k: v for k, v in image.items() if k not in {"id", "file_name"}}
        meta["coco_image_id"] = image["id"]
        samples.append(Sample(
            id=str(image["id"]), image=image_root / image["file_name"], caption=None, context=None,
            references=_references(captions.get(image["id"])), meta=meta,
        ))
        if limit and len(samples) >= limit:
            break
    return samples


def load_samples(
    dataset: str, split: str = "dev", limit: int | None = None, image_root: Path | None = None
) -> list[Sample]:
    path = resolve(dataset, split)
    if not path.is_file():
        raise FileNotFoundError(f"no dataset file at {path}")
    if path.suffix.lower() == ".json":
        return read_coco_captions(path, image_root, limit)
    return read_jsonl(path, limit)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
