"""All configuration in one place: environment variables (ALTTEXT_*) or a .env file."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALTTEXT_", env_file=".env", extra="ignore")

    model: str = Field("offline", description="'offline' or a Hugging Face model id / local path.")
    model_revision: str | None = Field(None, description="Hub revision (branch, tag or commit) to pin.")
    device: str | None = Field(None, description="cuda, mps or cpu; default picks the best available.")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] | None = None
    batch_size: int = Field(8, ge=1, le=256)

    max_chars: int = Field(125, ge=20, le=1000, description="Alt text length budget.")
    review_below: float = Field(0.5, ge=0.0, le=1.0, description="Confidence under which needs_review is set.")
    nlp: Literal["auto", "spacy", "rules"] = Field(
        "auto", description="Entity finder for grounding names: spaCy when installed, else rules."
    )

    max_image_bytes: int = Field(20 * 2**20, ge=1024)
    max_image_pixels: int = Field(40_000_000, ge=1024)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    data_dir: Path = Field(Path("data"), description="Where jobs, keys and the cache live.")

    def drafter_options(self) -> dict:
        if self.model == "offline":
            return {}
        options = {"revision": self.model_revision, "device": self.device, "dtype": self.dtype}
        return {k: v for k, v in options.items() if v is not None} | {"batch_size": self.batch_size}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
