"""Drafter backend that runs any Hugging Face image-to-text or image-text-to-text model.

One code path covers plain captioners (BLIP, GIT, VisionEncoderDecoder), Florence-2, PaliGemma
and chat-style vision-language models (SmolVLM/Idefics3, Qwen2-VL/Qwen2.5-VL, LLaVA, LLaVA-NeXT),
each prompted the way it was trained (``family_of``, from the config). In
transformers 5.x ``AutoModelForImageTextToText`` maps all of them, including
``vision-encoder-decoder`` (the old ``AutoModelForVision2Seq`` was folded into it), so no
second auto class is needed; any other model type is reported as a ``ModelLoadError``.
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import torch
from huggingface_hub import constants as hf_constants
from huggingface_hub import try_to_load_from_cache
from PIL import Image
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    ProcessorMixin,
)
from transformers.models.auto.processing_auto import PROCESSOR_MAPPING
from transformers.utils.hub import resolve_revision

from models.allocator import trim_if_due
from models.base import Capabilities, Drafter
from models.draft import Draft, Evidence, ModelRef
from models.errors import ModelLoadError
from models.pixels import is_greyscale
from models.prompts import as_hint, clean_reply, primary_language, tokens_for_budget, user_text
from models.versions import installed_version

# Florence-2 is steered by task tokens, not chat. DETAILED_CAPTION gives one or two sentences;
# MORE_DETAILED_CAPTION a paragraph, which only a generous length budget has room for.
FLORENCE_TASK = "<DETAILED_CAPTION>"
FLORENCE_LONG_TASK = "<MORE_DETAILED_CAPTION>"
FLORENCE_LONG_FROM_CHARS = 250
# PaliGemma (pt and mix checkpoints) was trained on "caption LANG"; English is what the merge checks.
PALIGEMMA_PROMPT = "caption en"

# Families by config.model_type (never by the model's name). Any other model whose processor
# has a chat template is treated as a chat model; anything else as a captioner.
CAPTIONER_TYPES = frozenset({"blip", "git", "vision-encoder-decoder"})
CHAT_TYPES = frozenset({"idefics3", "smolvlm", "qwen2_vl", "qwen2_5_vl", "llava", "llava_next"})

# Generation defaults per family (greedy decoding throughout: same input, same output, and the
# confidence is the probability of the tokens actually chosen). Captioners and Florence-2 loop
# on phrases without an n-gram block; chat models are not blocked, because for a decoder-only
# model the block also covers the prompt and would stop it repeating a name from the caption.
GENERATION_DEFAULTS: dict[str, dict] = {
    "captioner": {"no_repeat_ngram_size": 3, "repetition_penalty": None},
    "florence2": {"no_repeat_ngram_size": 3, "repetition_penalty": None},
    "paligemma": {"no_repeat_ngram_size": None, "repetition_penalty": None},
    "chat": {"no_repeat_ngram_size": None, "repetition_penalty": None},
}
def family_of(model_type: str, has_chat_template: bool) -> str:
    if model_type == "florence2":
        return "florence2"
    if model_type == "paligemma":
        return "paligemma"
    if model_type in CAPTIONER_TYPES:
        return "captioner"
    if model_type in CHAT_TYPES or has_chat_template:
        return "chat"
    return "captioner"


class GenerationSettings(BaseSettings):
    """Generation settings (ALTTEXT_GENERATION_*); unset ones take the family's default."""

    model_config = SettingsConfigDict(env_prefix="ALTTEXT_GENERATION_", env_file=".env", extra="ignore")

    max_new_tokens: int | None = Field(None, ge=1, le=4096, description="Default: from the length budget.")
    no_repeat_ngram_size: int | None = Field(None, ge=0, le=10, description="0 turns the family's block off.")
    repetition_penalty: float | None = Field(None, ge=1.0, le=2.0)

    def overrides(self) -> dict:
        return {k: v for k, v in self.model_dump().items() if v is not None}


def chat_messages(text: str) -> list[dict]:
    """One user turn holding the image and the instruction, in the processor chat format."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]


def pick_device(device: str | None) -> str:
    if device not in (None, "auto"):
        return device
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


# CPU features that multiply bfloat16 in hardware (Intel AMX, AVX512-BF16); elsewhere bf16 is
# emulated in float32 registers and slower than float32 itself.
BF16_CPU_FEATURES = ("amx_bf16", "avx512_bf16")
CPUINFO = Path("/proc/cpuinfo")


def cpu_capabilities() -> Mapping[str, object]:
    """The CPU's instruction-set features as torch sees them (``torch.cpu.get_capabilities``,
    cpuinfo read at run time), cross-checked against the kernel's flags in /proc/cpuinfo where
    there is one: a feature counts only when both report it (a kernel that does not enable
    AMX state leaves the flag out, and oneDNN then cannot use AMX)."""
    get = getattr(torch.cpu, "get_capabilities", None)
    try:
        caps = dict(get()) if get is not None else {}
    except Exception:  # an unusual platform: fall back to the kernel's view alone
        caps = {}
    try:
        flags = {f for line in CPUINFO.read_text().splitlines() if line.startswith("flags")
                 for f in line.split(":", 1)[1].split()}
    except OSError:
        return caps
    if get is None:
        return {f: True for f in flags}
    return {k: (v and k in flags) if k in BF16_CPU_FEATURES else v for k, v in caps.items()}


def cpu_has_native_bf16(capabilities: Mapping[str, object] | None = None) -> bool:
    caps = cpu_capabilities() if capabilities is None else capabilities
    return any(bool(caps.get(feature)) for feature in BF16_CPU_FEATURES)


def pick_dtype(dtype: str | None, device: str, cpu: Mapping[str, object] | None = None) -> torch.dtype:
    """``dtype`` by name, or for "auto"/None the fastest well-supported one for ``device``:
    bfloat16 on CUDA (float16 where bf16 is unsupported); on CPU bfloat16 where the CPU has
    bf16 matrix units (``cpu``: its capabilities, default read from this machine; measured
    2.7x float32 on a Xeon with AMX, evaluation/results/bench/speedups.json), else float32;
    MPS float32 (its half kernels are patchy and slow)."""
    if dtype not in (None, "auto"):
        resolved = getattr(torch, dtype, None)
        if not isinstance(resolved, torch.dtype):
            raise ValueError(f"unknown torch dtype {dtype!r}")
        return resolved
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "cpu" and cpu_has_native_bf16(cpu):
        return torch.bfloat16
    return torch.float32


class TransformersDrafter(Drafter):
    """Drafts alt text with a Hugging Face vision-language model (hub id or local directory).

    ``prompt`` replaces the default instruction of a chat model, or is the text prompt of a
    captioner that takes one (a Florence-2 task token, a BLIP caption prefix). ``device`` and
    ``dtype`` default to the best available ("auto" means the same). ``local_files_only=None``
    leaves the choice to transformers (HF_HUB_OFFLINE). ``keep_freed_memory``: on CPU, apply
    ``models.allocator.keep_freed_memory`` to the process (the service does, by default).
    """

    requires = {"torch": "torch", "transformers": "transformers"}
    settings_options = ("revision", "device", "dtype", "batch_size", "keep_freed_memory")

    @classmethod
    def from_name(cls, name: str, **options) -> TransformersDrafter:
        return cls(name, **({"generation": GenerationSettings().overrides()} | options))

    @classmethod
    def describe_requirements(cls) -> str:
        torch_v, tf_v = installed_version("torch"), installed_version("transformers")
        return (f"torch {torch_v or 'MISSING'}, transformers {tf_v or 'MISSING'}; "
                "set ALTTEXT_MODEL to a hub id or local path (weights download on first use unless local)")

    def __init__(
        self,
        model_id: str,
        *,
        revision: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        max_new_tokens: int | None = None,
        prompt: str | None = None,
        local_files_only: bool | None = None,
        batch_size: int = 8,
        generation: dict | None = None,
        keep_freed_memory: bool = False,
    ) -> None:
        if batch_size < 1 or (max_new_tokens is not None and max_new_tokens < 1):
            raise ValueError("batch_size and max_new_tokens must be at least 1")
        self._device = pick_device(device)
        self._dtype = pick_dtype(dtype, self._device)
        if keep_freed_memory and self._device == "cpu":  # before the weights: they come from the same heaps
            from models.allocator import keep_freed_memory as keep

            keep()
        self._batch_size = batch_size

        commit, config, processor, self._tokenizer, self._image_processor, self._model = _load(
            model_id, revision=revision, dtype=self._dtype, local_files_only=local_files_only
        )
        self._model.to(self._device).eval()
        self._ref = ModelRef(id=model_id, revision=commit or revision, backend="transformers")

        # The family, from the config (never the name), decides the prompt: chat models get the
        # alt-text instruction plus the quoted page data; Florence-2 a task token; PaliGemma
        # "caption en"; captioners nothing, or the prompt given (a BLIP caption prefix).
        self._processor = processor if isinstance(processor, ProcessorMixin) else None
        self._chat_template = self._find_chat_template()
        self.family = family_of(config.model_type, self._chat_template is not None)
        if self.family == "chat" and self._chat_template is None:
            raise ModelLoadError("unsupported", f"cannot load model {model_id!r}: a {config.model_type} chat model "
                                 "needs a processor with a chat template")
        self._prompt = prompt
        if self.family == "captioner" and prompt is not None and self._processor is None:
            raise ValueError(f"{model_id!r} has no text processor, so it cannot take a prompt")
        gen = dict(GENERATION_DEFAULTS[self.family])
        gen.update({k: v for k, v in (generation or {}).items() if k != "max_new_tokens"})
        if gen.get("no_repeat_ngram_size") == 0:
            gen["no_repeat_ngram_size"] = None
        self._generation = {k: v for k, v in gen.items() if v is not None}
        self._max_new_tokens = max_new_tokens or (generation or {}).get("max_new_tokens")

        # generate() appends new tokens at the right, so a decoder-only model needs its
        # prompts padded on the left or short prompts would continue from pad tokens.
        # Encoder-decoder prompts stay right-padded as those encoders were trained.
        if not config.is_encoder_decoder:
            self._tokenizer.padding_side = "left"
        if self._tokenizer.pad_token is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token

        # Tokens that end a caption. BERT-vocabulary decoders (BLIP, GIT) end with [SEP], and
        # BLIP's own generate() stops on it while its generation config names another eos.
        eos = self._model.generation_config.eos_token_id
        end_ids = set(eos if isinstance(eos, list) else [eos])
        end_ids |= {self._tokenizer.eos_token_id, self._tokenizer.sep_token_id}
        end_ids.discard(None)
        self._end_ids = torch.tensor(sorted(end_ids), dtype=torch.long)

        # Added markup tokens (image placeholders, location tokens, chat markers) that are not
        # flagged special survive skip_special_tokens; none of them belong in alt text. Only
        # bracketed ones are removed, in case a tokenizer added ordinary words.
        leftovers = sorted(
            (t for t in self._tokenizer.get_added_vocab() if re.fullmatch(r"<[^<>]+>|\[[^\[\]]+\]", t)),
            key=len,
            reverse=True,
        )
        self._leftover_re = re.compile("|".join(map(re.escape, leftovers))) if leftovers else None

    @property
    def model(self) -> ModelRef:
        return self._ref

    @property
    def capabilities(self) -> Capabilities:
        # A chat model reads the page hint; a captioner may take a fixed prompt. Either way the
        # draft can depend on the request, so caches key on the hint.
        return Capabilities(takes_hints=True, batch_size=self._batch_size, device=self._device,
                            dtype=str(self._dtype).removeprefix("torch."))

    def prompts_for(self, hints: Sequence[str | None]) -> list[str] | None:
        """The text fed to the processor for each image, or None for unconditional captioning."""
        page = [as_hint(h) for h in hints]
        if self.family == "chat":
            template = None if self._processor.chat_template else self._chat_template
            return [
                self._processor.apply_chat_template(
                    chat_messages(user_text(hint, self._prompt)),
                    chat_template=template,
                    add_generation_prompt=True,
                    tokenize=False,
                )
                for hint in page
            ]
        if self.family == "florence2":
            return [self._prompt or (FLORENCE_LONG_TASK if h.max_chars >= FLORENCE_LONG_FROM_CHARS else FLORENCE_TASK)
                    for h in page]
        if self.family == "paligemma":
            return [self._prompt or PALIGEMMA_PROMPT] * len(page)
        return [self._prompt] * len(page) if self._prompt is not None else None

    def generation_settings(self, hints: Sequence[str | None]) -> dict:
        """What generate() gets for this batch, besides the inputs."""
        limits = self._token_limits(hints)
        return {"max_new_tokens": max(limits), "do_sample": False, "num_beams": 1, **self._generation}

    def _token_limits(self, hints: Sequence[str | None]) -> list[int]:
        if self._max_new_tokens is not None:
            return [self._max_new_tokens] * len(hints)
        return [tokens_for_budget(as_hint(h).max_chars) for h in hints]

    def draft(self, images: Sequence[Image.Image], hints: Sequence[str | None] | None = None) -> list[Draft]:
        if hints is None:
            hints = [None] * len(images)
        if len(hints) != len(images):
            raise ValueError(f"got {len(images)} images but {len(hints)} hints")
        drafts: list[Draft] = []
        for start in range(0, len(images), self._batch_size):
            end = start + self._batch_size
            drafts.extend(self._draft_batch(images[start:end], hints[start:end]))
            trim_if_due()  # a no-op unless this process keeps freed memory (models/allocator.py)
        return drafts

    @torch.inference_mode()
    def _draft_batch(self, images: Sequence[Image.Image], hints: Sequence[str | None]) -> list[Draft]:
        started = time.perf_counter()
        rgb = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
        inputs = self._encode(rgb, self.prompts_for(hints))
        out = self._model.generate(
            **inputs.to(device=self._device, dtype=self._dtype),
            **self.generation_settings(hints),
            output_scores=True,
            return_dict_in_generate=True,
        )
        # The last len(scores) tokens are exactly the generated ones, whatever the model put in
        # front of them: the prompt (decoder-only), a decoder start token (encoder-decoder) or
        # BLIP's [DEC] prefix. Slicing there strips the prompt for every architecture alike.
        generated = out.sequences[:, -len(out.scores) :].cpu()
        # Each row stops at its own budget's token limit, as it would have alone: greedy decoding
        # of a row does not depend on how long the batch runs.
        limits = torch.tensor(self._token_limits(hints))
        lengths = torch.minimum(_lengths_to_first_end(generated, self._end_ids), limits)
        confidences = _mean_token_probability(generated, out.scores, lengths)
        latency_ms = (time.perf_counter() - started) * 1000 / len(images)

        chat = self.family == "chat"
        return [
            Draft(
                text=clean_reply(self._decode(tokens[:length])) if chat else self._decode(tokens[:length]),
                confidence=confidence,
                evidence=Evidence(kind="unknown", greyscale=is_greyscale(image)),
                model=self._ref,
                latency_ms=latency_ms,
                # Chat models are asked to write in the page's language; the others write English.
                lang=primary_language(as_hint(hint).lang) if chat else None,
            )
            for tokens, length, confidence, image, hint in zip(generated, lengths.tolist(), confidences, rgb, hints)
        ]

    def _encode(self, images: list[Image.Image], prompts: list[str] | None):
        if self._processor is None:
            return self._image_processor(images=images, return_tensors="pt")
        if prompts is None:
            return self._processor(images=images, return_tensors="pt")
        return self._processor(images=images, text=prompts, padding=True, return_tensors="pt")

    def _decode(self, tokens: torch.Tensor) -> str:
        text = self._tokenizer.decode(tokens, skip_special_tokens=True)
        if self._leftover_re is not None:
            text = self._leftover_re.sub(" ", text)
        return " ".join(text.split())

    def _find_chat_template(self) -> str | dict | None:
        # Chat models need a processor to place the image tokens; a bare tokenizer template
        # is only consulted when the processor itself has none (older hub layouts).
        if self._processor is None:
            return None
        return self._processor.chat_template or getattr(self._tokenizer, "chat_template", None)


def _load(model_id: str, *, revision: str | None, dtype: torch.dtype, local_files_only: bool | None):
    """Commit hash (None for a local directory), config, processor, tokenizer, standalone
    image processor (None when the processor handles images) and model."""
    path = Path(model_id).expanduser()
    if path.is_dir():
        local_files_only = True  # a local directory needs nothing from the hub
    elif path.is_absolute() or model_id.startswith(("./", "../", "~")) or path.exists():
        # Caught here so a mistyped path is not sent to the hub as a repo id.
        raise ModelLoadError("not_found", f"cannot load model {model_id!r}: no such directory. "
                             "Give the path of a saved model, or a Hugging Face id; `alttext models` lists backends.")
    elif hub_offline():
        local_files_only = True  # read now, not when huggingface_hub was imported
    elif not local_files_only:
        # Without this check a machine with no hub access retries for half a minute before failing.
        unreachable = _hub_unreachable()
        if unreachable:
            if try_to_load_from_cache(model_id, "config.json", revision=revision) is None:
                raise ModelLoadError("offline", (
                    f"cannot load model {model_id!r}: it is not in the local cache and the hub is unreachable "
                    f"({unreachable}). Download it where the hub is reachable (`hf download {model_id}`) and copy "
                    "the cache, or set ALTTEXT_MODEL to a local path; `alttext models` lists backends."))
            local_files_only = True  # cached: load it without asking the hub
    hub = {}
    if local_files_only is not None:
        hub["local_files_only"] = local_files_only
    # Resolve the branch or tag to a commit once and load every file from that commit, so a
    # repo updated mid-load cannot mix two versions. Local directories and unreachable hubs
    # come back unresolved (a plain str), and the loaders below report any real problem.
    try:
        hub["revision"] = resolve_revision(model_id, revision, local_files_only=bool(local_files_only))
    except Exception as exc:
        raise _load_error(model_id, exc) from exc
    commit = getattr(hub["revision"], "resolved", None)
    try:
        config = AutoConfig.from_pretrained(model_id, **hub)
        try:
            processor = AutoProcessor.from_pretrained(model_id, **hub)
        except ImportError as exc:
            processor = _processor_without_video(config, model_id, hub, exc)
        image_processor = None
        if isinstance(processor, ProcessorMixin):
            tokenizer = processor.tokenizer
        else:
            # Repos without a processor class (typical VisionEncoderDecoder captioners) ship a
            # tokenizer and an image processor side by side; AutoProcessor returns only one.
            tokenizer = AutoTokenizer.from_pretrained(model_id, **hub)
            image_processor = AutoImageProcessor.from_pretrained(model_id, **hub)
        model = AutoModelForImageTextToText.from_pretrained(model_id, config=config, dtype=dtype, **hub)
    except (OSError, ValueError, KeyError, ImportError, RuntimeError, AttributeError, TypeError) as exc:
        raise _load_error(model_id, exc) from exc
    return commit, config, processor, tokenizer, image_processor, model


def _processor_without_video(config, model_id: str, hub: dict, exc: ImportError) -> ProcessorMixin:
    """The model's processor with its video half left out, for when only that half cannot load.

    Alt text needs images only, but some processors (Qwen2-VL, Qwen2.5-VL) also hold a video
    processor that needs torchvision, which may not be installable beside the torch in use.
    Decided by what failed, not by the model's name: if the processor class mapped to the
    config has no video processor, or it still fails without one, the original error stands.
    """
    cls = PROCESSOR_MAPPING[type(config)] if type(config) in PROCESSOR_MAPPING else None
    if cls is None or "video_processor" not in cls.get_attributes():
        raise exc

    class ImageOnly(cls):
        @classmethod
        def get_attributes(klass):
            return [name for name in cls.get_attributes() if name != "video_processor"]

    ImageOnly.__name__ = ImageOnly.__qualname__ = cls.__name__  # saved and shown as the real class
    try:
        processor = ImageOnly.from_pretrained(model_id, **hub)
    except Exception:
        raise exc from None
    processor.video_processor = None  # videos are never sent; any use fails loudly
    return processor


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _hub_unreachable(timeout_s: float = 5.0) -> str | None:
    """None when the hub answers, else why not (one quick try, no retries)."""
    try:
        httpx.head(hf_constants.ENDPOINT, timeout=timeout_s, follow_redirects=False)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None


def _load_error(model_id: str, exc: BaseException) -> ModelLoadError:
    """One line naming the model, the cause and what to do."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    kinds = {type(e).__name__ for e in chain}
    first_line = " ".join(str(exc).split())[:300]
    if "GatedRepoError" in kinds:
        return ModelLoadError("gated", f"cannot load model {model_id!r}: it is gated on the hub. Accept its licence "
                              "on huggingface.co and log in (`hf auth login`) or set HF_TOKEN.")
    if "RepositoryNotFoundError" in kinds or "is not a local folder and is not a valid model identifier" in str(exc):
        return ModelLoadError("not_found", f"cannot load model {model_id!r}: no such model on the hub or on disk. "
                              "Check the id or give a local path; `alttext models` lists backends.")
    if "LocalEntryNotFoundError" in kinds or "offline mode" in str(exc) or "couldn't connect" in str(exc).lower():
        return ModelLoadError("offline", f"cannot load model {model_id!r}: it is not in the local cache and the hub "
                              "cannot be used (HF_HUB_OFFLINE or no network). Download it where the hub is reachable "
                              "or set ALTTEXT_MODEL to a local path.")
    if isinstance(exc, ImportError):
        return ModelLoadError("missing_package", f"cannot load model {model_id!r}: {first_line}")
    if "Unrecognized configuration class" in str(exc) or "Unrecognized model" in str(exc):
        return ModelLoadError("unsupported", f"cannot load model {model_id!r}: it is not an image-to-text model "
                              "transformers can run (AutoModelForImageTextToText). Pick a captioner or VLM; "
                              "`alttext models` lists backends.")
    return ModelLoadError("invalid", f"cannot load model {model_id!r} as an image-to-text model: {first_line}")


def _lengths_to_first_end(tokens: torch.Tensor, end_ids: torch.Tensor) -> torch.Tensor:
    """Per row, how many tokens count: up to and including the first end token.

    What follows it is padding that generate() adds while longer rows finish.
    """
    is_end = torch.isin(tokens, end_ids)
    first_end = is_end.int().argmax(dim=1)
    return torch.where(is_end.any(dim=1), first_end + 1, tokens.shape[1])


def _mean_token_probability(tokens: torch.Tensor, scores: Sequence[torch.Tensor], lengths: torch.Tensor) -> list[float]:
    """Geometric mean of the probabilities of the chosen tokens, per row, padding excluded.

    Scores are the logits greedy decoding actually chose from (after the model's logits
    processors), so a token forced by the generation config counts as certain.
    """
    chosen = torch.stack(
        [
            step.float().log_softmax(dim=-1).gather(1, tokens[:, i : i + 1].to(step.device)).squeeze(1).cpu()
            for i, step in enumerate(scores)
        ],
        dim=1,
    )
    counted = torch.arange(tokens.shape[1]) < lengths[:, None]
    # torch.where, not multiplication: a pad position may score -inf, and -inf * 0 is nan.
    mean_log_prob = torch.where(counted, chosen, 0.0).sum(dim=1) / lengths
    return mean_log_prob.exp().clamp(0.0, 1.0).tolist()
