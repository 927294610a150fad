"""What a drafter returns: a plain-sentence draft plus the evidence behind it."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ImageKind = Literal["photo", "illustration", "chart", "diagram", "map", "document", "screenshot", "logo", "text",
                    "unknown"]
# Kinds the embedded models were not trained on: their object labels are guesses, so a person checks.
OUT_OF_DOMAIN: frozenset[str] = frozenset({"illustration", "chart", "diagram", "map", "document", "screenshot", "logo"})


class Label(BaseModel):
    """One thing the backend saw: a class name, how sure it is, and how many."""

    model_config = ConfigDict(frozen=True)

    name: str
    score: float = Field(ge=0.0, le=1.0)
    count: int = Field(default=1, ge=1)


class Detection(BaseModel):
    """One detector box: class, score and where it is (x0, y0, x1, y1 as fractions of the image)."""

    model_config = ConfigDict(frozen=True)

    name: str
    score: float = Field(ge=0.0, le=1.0)
    box: tuple[float, float, float, float]


class Evidence(BaseModel):
    """What the backend actually observed, so the merge step and humans can check the draft."""

    model_config = ConfigDict(frozen=True)

    labels: list[Label] = Field(default_factory=list, description="Whole-image classes (e.g. ImageNet).")
    objects: list[Label] = Field(default_factory=list, description="Detected objects with counts.")
    faces: int | None = Field(default=None, description="Faces found; None when not measured.")
    text: str = Field(default="", description="Text read from the image (OCR).")
    kind: ImageKind = "unknown"
    greyscale: bool | None = None
    detections: list[Detection] = Field(default_factory=list, description="Detector boxes behind `objects`.")
    scene: str | None = Field(default=None, description="Setting read from the objects and classes ('in a kitchen').")
    scene_source: Literal["objects", "classes"] | None = Field(
        default=None, description="What the setting was read from: the detected things ('objects', as sure as they "
        "are) or a whole-image class ('classes', which the draft's confidence does not cover).")
    colour: str | None = Field(default=None, description="Dominant colour of the main object, when one dominates.")


class ModelRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    revision: str | None = None
    backend: str


class Draft(BaseModel):
    """A drafter's description of one image, before page context is merged in."""

    model_config = ConfigDict(frozen=True)

    text: str
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: Evidence = Field(default_factory=Evidence)
    model: ModelRef
    latency_ms: float = Field(ge=0.0)
    lang: str | None = Field(
        None, description="Language the text is written in (primary BCP 47 subtag), as the backend knows it; "
        "None means English-only output."
    )
