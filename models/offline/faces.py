"""Face counting with libfacedetection (`yuface`: BSD-3, the CNN weights are compiled in)."""
from __future__ import annotations

import numpy as np
from PIL import Image


class FaceCounter:
    def __init__(self, min_score: float = 0.75) -> None:
        import yuface

        self._detect = yuface.detect
        self.min_score = min_score

    def faces(self, image: Image.Image) -> list[tuple[float, float]]:
        """(score, share of the image area) for each face found."""
        bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
        confs, boxes, _ = self._detect(bgr, conf=self.min_score)
        area = float(image.width * image.height)
        # yuface reports confidence as a 0-100 integer
        return [(float(c) / 100.0, float(b[2]) * float(b[3]) / area) for c, b in zip(confs, boxes)]
