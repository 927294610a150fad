"""CLIPScore and RefCLIPScore (Hessel et al., 2021) from a local CLIP-style model.

    CLIP-S(c, v)       = w * max(cos(E_text("A photo depicts " + c), E_image(v)), 0),  w = 2.5
    RefCLIP-S(c, R, v) = harmonic mean of CLIP-S(c, v) and max(max_r cos(E_text(c), E_text(r)), 0)

The model comes only from a local folder (``ALTTEXT_CLIP_MODEL`` or ``--clip-model``):
nothing is downloaded. An empty alt scores 0 (an informative image left undescribed).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

W = 2.5
PREFIX = "A photo depicts "
ENV = "ALTTEXT_CLIP_MODEL"
SKIPPED_NO_MODEL = f"skipped: no local CLIP model configured (set {ENV})"


def configured_path(explicit: str | os.PathLike | None = None) -> Path | None:
    value = explicit or os.environ.get(ENV)
    return Path(value) if value else None


class ClipScorer:
    """Embeds images and texts with a CLIP-style model loaded from a local folder."""

    def __init__(self, path: str | os.PathLike, *, device: str = "cpu", batch_size: int = 32) -> None:
        import torch
        from transformers import AutoModel, AutoProcessor

        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"no CLIP model folder at {path}")
        self._torch = torch
        self.path = path
        self.device = device
        self.batch_size = batch_size
        self.model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
        if not hasattr(self.model, "get_text_features") or not hasattr(self.model, "get_image_features"):
            raise ValueError(f"{path} is not a CLIP-style model (needs get_text_features and get_image_features)")
        self.processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        text_config = getattr(self.model.config, "text_config", None)
        self.max_length = getattr(text_config, "max_position_embeddings", 77) or 77

    @staticmethod
    def _pooled(out):
        return out if hasattr(out, "norm") else out.pooler_output

    def _normalise(self, features) -> np.ndarray:
        features = self._pooled(features).float()
        features = features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return features.cpu().numpy()

    def image_embeddings(self, images: Sequence[Image.Image]) -> np.ndarray:
        chunks = []
        with self._torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = [im.convert("RGB") for im in images[start:start + self.batch_size]]
                inputs = self.processor(images=batch, return_tensors="pt").to(self.device)
                chunks.append(self._normalise(self.model.get_image_features(pixel_values=inputs["pixel_values"])))
        return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)

    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        chunks = []
        with self._torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = list(texts[start:start + self.batch_size])
                inputs = self.processor(text=batch, return_tensors="pt", padding=True, truncation=True,
                                        max_length=self.max_length).to(self.device)
                kwargs = {"input_ids": inputs["input_ids"]}
                if "attention_mask" in inputs:
                    kwargs["attention_mask"] = inputs["attention_mask"]
                chunks.append(self._normalise(self.model.get_text_features(**kwargs)))
        return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)

    def clip_scores(self, image_emb: np.ndarray, candidates: Sequence[str]) -> np.ndarray:
        """CLIP-S per image; ``image_emb`` rows line up with ``candidates``."""
        scores = np.zeros(len(candidates), dtype=np.float64)
        idx = [i for i, c in enumerate(candidates) if c and c.strip()]
        if idx:
            text = self.text_embeddings([PREFIX + candidates[i] for i in idx])
            cos = np.sum(text * image_emb[idx], axis=1)
            scores[idx] = W * np.maximum(cos, 0.0)
        return scores

    def ref_clip_scores(
        self, clip_s: np.ndarray, candidates: Sequence[str], references: Sequence[Sequence[str]]
    ) -> np.ndarray:
        """RefCLIP-S per image; NaN where an image has no reference."""
        out = np.full(len(candidates), np.nan, dtype=np.float64)
        with_refs = [i for i, refs in enumerate(references) if refs]
        if not with_refs:
            return out
        flat = [r for i in with_refs for r in references[i]]
        ref_emb = self.text_embeddings(flat)
        cand_idx = [i for i in with_refs if candidates[i] and candidates[i].strip()]
        cand_emb = dict(zip(cand_idx, self.text_embeddings([candidates[i] for i in cand_idx]))) if cand_idx else {}
        offset = 0
        for i in with_refs:
            n = len(references[i])
            refs = ref_emb[offset:offset + n]
            offset += n
            if i not in cand_emb:
                out[i] = 0.0
                continue
            ref_sim = max(float(np.max(refs @ cand_emb[i])), 0.0)
            a, b = float(clip_s[i]), ref_sim
            out[i] = 0.0 if a + b == 0 else 2 * a * b / (a + b)
        return out
