"""Test fixtures on disk and images drawn in code."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
COCO_FIXTURES = FIXTURES / "coco"


def coco_fixture(image_id: str) -> Image.Image:
    return Image.open(COCO_FIXTURES / f"{image_id}.jpg").convert("RGB")


def coco_references() -> dict[str, list[str]]:
    rows = [json.loads(line) for line in (COCO_FIXTURES / "references.jsonl").read_text().splitlines() if line]
    return {row["id"]: row["references"] for row in rows}


def text_image(lines: list[str], size: int = 36) -> Image.Image:
    """Black text on white, as in a scanned notice or a sign."""
    font = ImageFont.load_default(size=size)
    image = Image.new("RGB", (40 + 22 * max(len(line) for line in lines), 40 + len(lines) * (size + 24)), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((20, 20 + i * (size + 24)), line, fill="black", font=font)
    return image
