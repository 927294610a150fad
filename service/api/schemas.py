"""Request and response bodies of the HTTP API. Every field is bounded; page fields
come from ``service.page.PageContext`` so the API, CLI and jobs share one contract."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.page import PageContext

from service.result import AltResult

HTTP_URL = r"^[Hh][Tt][Tt][Pp][Ss]?://"
WEBHOOK_SECRET = r"^whsec_(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"  # whsec_ + base64
MAX_BASE64_CHARS = 40 * 2**20  # hard ceiling; ALTTEXT_MAX_IMAGE_BYTES is checked before decoding
EXAMPLE_PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"


# "Exactly one source" in the schema itself, so clients and fuzzers see the same rule the
# validator enforces (an explicit null counts as absent).
ONE_SOURCE = {"oneOf": [
    {"required": ["image_url"], "properties": {"image_url": {"type": "string"}}},
    {"required": ["image_base64"], "properties": {"image_base64": {"type": "string"}}},
]}


class ImageInput(PageContext):
    """One image by URL or base64, with what the page says about it."""

    # strict: in JSON, 0 is not false and "20" is not 20 (form fields are parsed leniently elsewhere)
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={**ONE_SOURCE, "examples": [
            {"image_url": "https://example.org/uploads/2026/11/harbour.jpg",
             "caption": "The harbour at dawn, from the north pier", "context": "Visiting Whitby", "lang": "en"},
            {"image_base64": f"data:image/png;base64,{EXAMPLE_PNG_BASE64}", "role": "informative"},
        ]},
    )

    image_url: str | None = Field(
        None, min_length=8, max_length=2048, pattern=HTTP_URL,
        description="http(s) URL of the image; fetched only from public addresses.",
    )
    image_base64: str | None = Field(
        None, min_length=1, max_length=MAX_BASE64_CHARS,
        description="The image bytes as base64, or a data: URL (data:image/png;base64,...).",
    )

    @model_validator(mode="before")
    @classmethod
    def _integral_floats(cls, data):
        # JSON Schema counts 120.0 as an integer; strict mode alone would refuse it.
        if isinstance(data, dict) and isinstance(data.get("max_chars"), float) and data["max_chars"].is_integer():
            data = {**data, "max_chars": int(data["max_chars"])}
        return data

    @model_validator(mode="after")
    def _one_source(self):
        if (self.image_url is None) == (self.image_base64 is None):
            raise ValueError("give exactly one of image_url or image_base64")
        return self


class BatchItem(ImageInput):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={**ONE_SOURCE, "examples": [{"id": "attachment-1042",
                                         "image_url": "https://example.org/uploads/2026/11/harbour.jpg",
                                         "caption": "The harbour at dawn"}]},
    )

    id: str | None = Field(None, max_length=255, description="Your own id for the image, echoed in the result.")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    items: list[BatchItem] = Field(min_length=1, max_length=1000,
                                   description="Images to describe (at most ALTTEXT_MAX_BATCH_ITEMS).")


class ItemError(BaseModel):
    code: str = Field(examples=["invalid_image"])
    message: str


class ItemResult(BaseModel):
    index: int = Field(ge=0, description="Position of the item in the request.")
    id: str | None = Field(None, description="The item's own id, if it had one.")
    status: Literal["ok", "error", "pending", "cancelled"]
    result: AltResult | None = None
    error: ItemError | None = None


class BatchResponse(BaseModel):
    results: list[ItemResult]


class WebhookSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(min_length=8, max_length=2048, pattern=HTTP_URL, description="Called once when the job completes.")
    secret: str | None = Field(
        None, min_length=10, max_length=200, pattern=WEBHOOK_SECRET,
        description="Standard Webhooks secret (whsec_<base64>) to sign with; default: the server's.",
    )


class JobRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{
            "items": [{"id": "1042", "image_url": "https://example.org/uploads/a.jpg"},
                      {"id": "1043", "image_url": "https://example.org/uploads/b.png", "caption": "Our team"}],
            "webhook": {"url": "https://cms.example.org/alttext/webhook"},
        }]},
    )

    items: list[BatchItem] = Field(min_length=1, max_length=1_000_000,
                                   description="Images to describe (at most ALTTEXT_MAX_JOB_ITEMS).")
    webhook: WebhookSpec | None = None


class WebhookStatus(BaseModel):
    url: str
    state: Literal["waiting", "pending", "delivered", "failed"]
    attempts: int = Field(ge=0)


class Job(BaseModel):
    id: str = Field(examples=["job_5f0c2a9b1d4e6f7a8b9c0d1e"])
    status: Literal["queued", "running", "completed", "cancelled"]
    total: int = Field(ge=0)
    succeeded: int = Field(ge=0)
    failed: int = Field(ge=0)
    pending: int = Field(ge=0)
    created_at: float = Field(description="Unix time.")
    updated_at: float
    finished_at: float | None = None
    webhook: WebhookStatus | None = None
    results_url: str


class JobResults(BaseModel):
    items: list[ItemResult]
    next_after: int | None = Field(None, description="Pass as ?after= for the next page; null on the last page.")


class ErrorBody(BaseModel):
    code: str = Field(examples=["invalid_image"], description="Stable machine-readable code.")
    message: str
    request_id: str


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready", "loading", "failed", "unavailable"]
    model: dict | None = Field(None, description="The model in use: id, revision, backend, device and, for a local "
                               "neural model, dtype (the precision it runs in, e.g. bfloat16 on a CPU with AMX).")
    detail: str | None = None
