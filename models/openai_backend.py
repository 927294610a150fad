"""Drafter backend for any server speaking the OpenAI chat-completions API with image inputs:
vLLM, TGI, Ollama, llama.cpp server, LM Studio or a hosted API (``ALTTEXT_MODEL=openai:MODEL``).

Each image is re-encoded as a JPEG no larger than ``image_max_side`` pixels on its longest side and
sent as a data URL in one user turn with the same instruction and quoted page data the local chat
models get (``models.prompts``). Requests of a batch run in parallel up to ``max_concurrency``
(shared by every batch of this drafter). The official ``openai`` client does the HTTP work: its
timeout, and its retries with exponential backoff on connection errors, 408, 409, 429 and 5xx
(honouring Retry-After). What still fails maps to our error codes: ``upstream_rate_limited`` (429),
``timeout`` and ``upstream_unavailable`` (anything else).
"""
from __future__ import annotations

import base64
import io
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import openai
from PIL import Image
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.base import Capabilities, Drafter
from models.draft import Draft, Evidence, ModelRef
from models.errors import ModelLoadError, UpstreamError, UpstreamRateLimited, UpstreamTimeout
from models.pixels import is_greyscale
from models.prompts import as_hint, clean_reply, primary_language, tokens_for_budget, user_text

PREFIX = "openai:"
# Servers that return no token log-probabilities leave the confidence unknown: this value sits at
# the default review threshold, so such drafts are not flagged for review on confidence alone
# but never count as sure either. With logprobs, confidence is their geometric mean.
UNKNOWN_CONFIDENCE = 0.5
HEALTH_TTL_S = 5.0

Listener = Callable[[float, str], None]  # (seconds, outcome: "ok" or an error code)


def encode_image(image: Image.Image, max_side: int, quality: int = 90) -> str:
    """A data URL holding the image as JPEG, downscaled so its longest side is at most max_side."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if max(rgb.size) > max_side:
        scale = max_side / max(rgb.size)
        rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.LANCZOS)
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class OpenAISettings(BaseSettings):
    """This backend's settings: ALTTEXT_OPENAI_* environment variables (or the .env file)."""

    model_config = SettingsConfigDict(env_prefix="ALTTEXT_OPENAI_", env_file=".env", extra="ignore")

    base_url: str | None = Field(None, description="e.g. http://127.0.0.1:8001/v1; default OPENAI_BASE_URL.")
    api_key: SecretStr | None = Field(None, description="Default OPENAI_API_KEY; local servers take any value.")
    timeout_s: float = Field(60.0, gt=0, le=3600)
    max_retries: int = Field(3, ge=0, le=10)
    max_concurrency: int = Field(4, ge=1, le=256)
    image_max_side: int = Field(1024, ge=64, le=8192)
    logprobs: bool = True
    max_new_tokens: int | None = Field(None, ge=1, le=4096, description="Default: from the length budget.")
    temperature: float = Field(0.0, ge=0.0, le=2.0)

    def options(self) -> dict:
        values = self.model_dump(exclude={"api_key"}) | {
            "api_key": self.api_key.get_secret_value() if self.api_key else None}
        return {k: v for k, v in values.items() if v is not None}


class OpenAIDrafter(Drafter):
    """Drafts alt text with a remote vision-language model behind an OpenAI-compatible API.

    ``model`` is the server's model name (with or without the ``openai:`` prefix). ``base_url``
    and ``api_key`` default to the openai client's own (OPENAI_BASE_URL, OPENAI_API_KEY); local
    servers usually want ``http://HOST:PORT/v1`` and any non-empty key. ``from_name`` (what
    ALTTEXT_MODEL=openai:MODEL uses) reads the rest from ``OpenAISettings``.
    """

    requires = {"client": "openai"}
    settings_options = ("batch_size",)
    about = ("set ALTTEXT_MODEL=openai:MODEL and ALTTEXT_OPENAI_BASE_URL for vLLM, TGI, Ollama, "
             "llama.cpp server, LM Studio or a hosted API")

    @classmethod
    def from_name(cls, name: str, **options) -> OpenAIDrafter:
        return cls(name, **(OpenAISettings().options() | options))

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        max_concurrency: int = 4,
        image_max_side: int = 1024,
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
        logprobs: bool = True,
        prompt: str | None = None,
        batch_size: int = 8,
    ) -> None:
        name = model.removeprefix(PREFIX)
        if not name:
            raise ModelLoadError("invalid", "openai: needs a model name, e.g. openai:Qwen/Qwen2.5-VL-7B-Instruct")
        if max_concurrency < 1 or image_max_side < 16 or (max_new_tokens or 1) < 1 or max_retries < 0:
            raise ValueError("max_concurrency, image_max_side, max_new_tokens and max_retries are out of range")
        self._name = name
        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=max_retries
        )
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="openai-drafter")
        self._max_concurrency = max_concurrency
        self._image_max_side = image_max_side
        self._max_new_tokens = max_new_tokens
        self._temperature = temperature
        self._logprobs = logprobs
        self._prompt = prompt
        self.batch_size = batch_size
        self.listeners: list[Listener] = []
        self._health: tuple[float, bool, str] | None = None
        self._health_lock = threading.Lock()
        self._ref = ModelRef(id=PREFIX + name, revision=None, backend="openai")

    @property
    def model(self) -> ModelRef:
        return self._ref

    @property
    def capabilities(self) -> Capabilities:
        # A batch of at least max_concurrency keeps every connection busy.
        return Capabilities(takes_hints=True, batch_size=max(self.batch_size, self._max_concurrency), device="remote")

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    def warm_up(self) -> None:
        """Nothing to load here; whether the server answers is /ready's business (``health``)."""

    # --- requests ----------------------------------------------------------------------------

    def request_body(self, image: Image.Image, hint: str | None) -> dict:
        """The chat-completions request for one image, exactly as it is sent."""
        body = {
            "model": self._name,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": encode_image(image, self._image_max_side)}},
                        {"type": "text", "text": user_text(hint, self._prompt)},
                    ],
                }
            ],
            # From the length budget unless set (ALTTEXT_OPENAI_MAX_NEW_TOKENS).
            "max_tokens": self._max_new_tokens or tokens_for_budget(as_hint(hint).max_chars),
            "temperature": self._temperature,
        }
        if self._logprobs:
            body["logprobs"] = True
        return body

    def draft(self, images: Sequence[Image.Image], hints: Sequence[str | None] | None = None) -> list[Draft]:
        if hints is None:
            hints = [None] * len(images)
        if len(hints) != len(images):
            raise ValueError(f"got {len(images)} images but {len(hints)} hints")
        # One failure fails the batch (the batcher tells every waiter); list() re-raises it.
        return list(self._pool.map(self._draft_one, images, hints))

    def _draft_one(self, image: Image.Image, hint: str | None) -> Draft:
        body = self.request_body(image, hint)
        started = time.perf_counter()
        try:
            response = self._client.chat.completions.create(**body)
            choice = response.choices[0]
            text = choice.message.content
            if not isinstance(text, str):
                raise UpstreamError("bad_response", f"{self._name} at {self.base_url} sent no text")
        except Exception as exc:
            err = map_error(exc, self._name, self.base_url)
            self._notify(time.perf_counter() - started, err.code)
            raise err from exc
        elapsed = time.perf_counter() - started
        self._notify(elapsed, "ok")
        return Draft(
            text=clean_reply(text),
            confidence=_confidence(choice),
            evidence=Evidence(kind="unknown", greyscale=is_greyscale(image)),
            model=self._ref,
            latency_ms=elapsed * 1000,
            lang=primary_language(as_hint(hint).lang),
        )

    def add_listener(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def _notify(self, seconds: float, outcome: str) -> None:
        for listener in self.listeners:
            listener(seconds, outcome)

    # --- health ------------------------------------------------------------------------------

    def health(self) -> tuple[bool, str]:
        """(answers, detail): does the server answer and list this model? Cached a few seconds."""
        with self._health_lock:
            now = time.monotonic()
            if self._health is not None and now - self._health[0] < HEALTH_TTL_S:
                return self._health[1], self._health[2]
            ok, detail = self._check()
            self._health = (now, ok, detail)
            return ok, detail

    def _check(self) -> tuple[bool, str]:
        try:
            listed = [m.id for m in self._client.with_options(max_retries=0, timeout=5.0).models.list()]
        except Exception as exc:
            return False, str(map_error(exc, self._name, self.base_url))
        if listed and self._name not in listed:
            return False, (f"{self.base_url} answers but does not serve {self._name!r} "
                           f"(it serves: {', '.join(listed[:10])})")
        return True, f"{self.base_url} serves {self._name!r}"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()


def map_error(exc: BaseException, model: str, base_url: str) -> UpstreamError:
    """The openai client's exceptions (after its retries) -> our error codes."""
    where = f"{model} at {base_url}"
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamTimeout("timeout", f"{where} did not answer in time")
    if isinstance(exc, openai.RateLimitError):
        retry_after = _retry_after(exc.response)
        return UpstreamRateLimited("status_429", f"{where} is rate limiting us (429) after retries",
                                   retry_after=retry_after)
    if isinstance(exc, openai.APIConnectionError):
        return UpstreamError("connection", f"cannot connect to {base_url}: {exc.__cause__ or exc}")
    if isinstance(exc, openai.APIStatusError):
        return UpstreamError(f"status_{exc.status_code}", f"{where} answered {exc.status_code}: {_short(exc.message)}")
    return UpstreamError("bad_response", f"{where} sent a response we cannot read: {type(exc).__name__}: {exc}")


def _retry_after(response) -> float | None:
    try:
        value = float(response.headers.get("retry-after", ""))
    except (AttributeError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _confidence(choice) -> float:
    """Geometric mean of the chosen tokens' probabilities when the server sent logprobs."""
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    values = [t.logprob for t in content or [] if t.logprob is not None and math.isfinite(t.logprob)]
    if not values:
        return UNKNOWN_CONFIDENCE
    return min(1.0, max(0.0, math.exp(sum(values) / len(values))))
