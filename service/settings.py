"""All configuration in one place: environment variables (ALTTEXT_*) or a .env file."""
from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split(value):
    # Lists come from the environment as comma-separated text (CORS origins, fetch allowlist).
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALTTEXT_", env_file=".env", extra="ignore")

    model: str = Field(
        "offline", description="'offline', 'debug', a Hugging Face model id / local path, or 'openai:MODEL' for "
        "an OpenAI-compatible server (configured by ALTTEXT_OPENAI_* variables).",
    )
    model_revision: str | None = Field(None, description="Hub revision (branch, tag or commit) to pin.")
    device: str | None = Field(None, description="cuda, mps or cpu; default picks the best available.")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] | None = Field(
        None, description="Precision of a local model. auto (default): bfloat16 on CUDA (float16 without bf16) and on "
        "CPUs with AMX-BF16 or AVX512-BF16 units, float32 elsewhere; float32 for exact float32.",
    )
    batch_size: int = Field(8, ge=1, le=256, description="Images per model call (the dynamic batcher's max batch).")
    keep_freed_memory: bool = Field(
        True, description="A local model on CPU: keep memory freed between layers in the process for reuse (glibc) "
        "instead of handing it back to the OS, which page-faults and zeroes it again for the next layer; "
        "it is all handed back once a minute, so RSS swings between its peak batch's and what is in use. "
        "false: the C library's default.",
    )

    max_chars: int = Field(125, ge=20, le=1000, description="Alt text length budget.")
    review_below: float = Field(0.5, ge=0.0, le=1.0, description="Confidence under which needs_review is set.")
    nlp: Literal["auto", "spacy", "rules"] = Field(
        "auto", description="Entity finder for grounding names: spaCy when installed, else rules."
    )

    max_image_bytes: int = Field(20 * 2**20, ge=1024)
    max_image_pixels: int = Field(40_000_000, ge=1024)
    decode_side: int | None = Field(
        1024, ge=256, description="JPEGs at least twice this long side are decoded at 1/2, 1/4 or 1/8 scale, "
        "keeping at least this many pixels on the long side (the models look at 384-1024 px); unset: full size.")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    data_dir: Path = Field(Path("data"), description="Where jobs, keys and the cache live.")

    # --- HTTP API -------------------------------------------------------------------------
    database_url: str | None = Field(
        None, description="SQLAlchemy URL for jobs, keys and cache; default sqlite in data_dir. "
        "postgresql+psycopg://user:pass@host/db for several instances."
    )
    db_busy_timeout_s: float = Field(
        10.0, ge=0, le=600, description="How long a request waits for a locked SQLite database before 503.",
    )
    cache: bool = Field(True, description="Cache results by image hash + model + policy version + page context.")
    cache_url: str | None = Field(None, description="Separate database for the cache; default database_url.")
    cache_max_entries: int = Field(100_000, ge=1, description="Oldest cache entries beyond this are dropped.")

    batch_wait_ms: int = Field(10, ge=0, le=10_000, description="How long the batcher waits to fill a batch.")
    queue_size: int = Field(64, ge=1, le=100_000, description="Images waiting for the model before 503s.")
    request_timeout_s: float = Field(60.0, gt=0, le=3600, description="A sync request waits this long, then 504.")
    max_batch_items: int = Field(32, ge=1, le=1000, description="Items in one POST /v1/alt-text:batch.")
    max_job_items: int = Field(10_000, ge=1, le=1_000_000, description="Items in one job.")
    max_body_bytes: int = Field(
        64 * 2**20, ge=4096, description="Largest request body (uploads, base64 batches, job bodies)."
    )

    max_json_body_bytes: int = Field(
        32 * 2**20, ge=4096, description="Largest JSON or JSON Lines body: parsed in memory, so smaller than "
        "multipart uploads, which spool to disk. Enough for one maximal image as base64.",
    )
    json_bytes_in_flight: int = Field(
        96 * 2**20, ge=4096, description="JSON body bytes all requests together may hold while being read and "
        "handled; past it requests get 503 + Retry-After (one request alone may always use its limit).",
    )

    require_api_key: bool = Field(
        False, description="Require API keys even on loopback. Always required when host is not loopback."
    )
    rate_limit_per_minute: int = Field(
        600, ge=0,
        description="Default per-key budget (images per minute for describe calls, 1 per other call); 0 = off.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host header names this service answers to ('*.example.org' patterns, '*' for any). "
        "Default: loopback names (localhost, 127.0.0.1, ::1) when listening on loopback, any name beyond it "
        "(where keys are required). Stops DNS rebinding from reading a key-less loopback service.",
    )
    protect_ops: bool = Field(
        True, description="Where keys are required, /metrics, /docs, /redoc and /openapi.json need one too.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser (CMS admin pages)."
    )

    fetch_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Networks (CIDR) image_url and webhooks may reach although they are not public.",
    )
    fetch_timeout_s: float = Field(10.0, gt=0, le=600, description="Whole-download deadline for image_url.")
    fetch_max_redirects: int = Field(5, ge=0, le=20)

    webhook_secret: str | None = Field(
        None, description="Standard Webhooks signing secret (whsec_...); a job may bring its own."
    )
    webhook_retry_delays_s: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5.0, 30.0, 120.0, 600.0, 1800.0],
        description="Waits between webhook delivery attempts (the first attempt is immediate).",
    )
    webhook_timeout_s: float = Field(10.0, gt=0, le=120)
    job_lease_s: float = Field(
        30.0, gt=0,
        description="A worker owns a job this long between heartbeats; a crashed one's jobs resume after it.",
    )
    log_format: Literal["json", "text"] = "json"

    @field_validator("cors_origins", "fetch_allow", "webhook_retry_delays_s", "allowed_hosts", mode="before")
    @classmethod
    def _comma_lists(cls, value):
        return _split(value)

    @field_validator("fetch_allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for net in value:
            ipaddress.ip_network(net, strict=False)  # raises a clear error at startup
        return value

    @model_validator(mode="after")
    def _queue_holds_a_batch(self):
        # A batch request is queued all or nothing: a queue smaller than the largest batch
        # would answer every full batch 503 for ever.
        if self.queue_size < self.max_batch_items:
            raise ValueError(
                f"ALTTEXT_QUEUE_SIZE ({self.queue_size}) must be at least ALTTEXT_MAX_BATCH_ITEMS "
                f"({self.max_batch_items}): a full batch could never be admitted. Raise the queue or lower the batch limit."
            )
        return self

    def image_limits(self) -> dict:
        """``models.imageio.load_image``'s limits for an image this service is given."""
        return {"max_bytes": self.max_image_bytes, "max_pixels": self.max_image_pixels,
                "decode_side": self.decode_side}

    def drafter_options(self) -> dict:
        """The generic drafter settings that the chosen backend takes (the backend says which)."""
        from models.registry import drafter_options

        values = {"revision": self.model_revision, "device": self.device, "dtype": self.dtype,
                  "batch_size": self.batch_size, "keep_freed_memory": self.keep_freed_memory}
        return drafter_options(self.model, values)

    @property
    def loopback_only(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def host_names(self) -> list[str]:
        """The Host header names answered (lower case, without port or brackets); ['*'] = any."""
        if self.allowed_hosts:
            return [h.lower().strip("[]") for h in self.allowed_hosts]
        return list(LOOPBACK_NAMES) if self.loopback_only else ["*"]

    @property
    def auth_required(self) -> bool:
        return self.require_api_key or not self.loopback_only

    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'alttext.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
