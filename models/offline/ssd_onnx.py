"""The bundled SSD MobileNet v2 graph, run by ONNX Runtime instead of OpenCV's DNN module.

Same weights, same outputs to about 1e-5: OpenCV reads the frozen TensorFlow graph (the
weights) and its text description (the layers); this module rebuilds that layer list in
torch, exports it to ONNX in memory when the detector loads (``models.offline.ort``, a few
seconds, once per process) and runs it with ONNX Runtime, which on one core takes about 35 ms per image where
OpenCV's convolutions take about 85 ms. The anchors come from OpenCV's own PriorBox layers,
and ``detection_output`` is OpenCV's DetectionOutput layer (per-class greedy NMS, the same
thresholds) for the boxes the caller keeps.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

INPUT = 300
OUTPUTS = ("BoxEncodingPredictor/concat", "ClassPredictor/concat/sigmoid")
PRIORS = "PriorBox/concat"
# DetectionOutput's settings in the bundled graph description
NUM_CLASSES, NMS_THRESHOLD, TOP_K, KEEP_TOP_K, CONFIDENCE_THRESHOLD = 91, 0.6, 100, 100, 0.01


def parse_graph(text: str) -> list[dict]:
    """Nodes (name, op, inputs, attrs as lists of scalars) of a TensorFlow text graph."""
    nodes: list[dict] = []
    keys: list[str] = []
    node: dict = {}
    for token in re.findall(r'[A-Za-z_0-9]+\s*\{|\}|[A-Za-z_0-9]+\s*:\s*(?:"[^"]*"|\S+)', text):
        if token.endswith("{"):
            key = token[:-1].strip()
            if not keys and key == "node":
                node = {"input": [], "attr": {}}
                nodes.append(node)
            keys.append(key)
        elif token == "}":
            keys.pop()
        else:
            key, value = (part.strip() for part in token.split(":", 1))
            value = value.strip('"')
            if len(keys) == 1:
                if key == "input":
                    node["input"].append(value)
                else:
                    node[key] = value
            elif keys[1:2] == ["attr"]:
                if key == "key":
                    node["_key"] = value
                    node["attr"][value] = []
                else:
                    node["attr"][node["_key"]].append(value)
    return nodes


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "SAME": the output is ceil(size / stride); an odd pad goes after."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def build_torch(net, nodes: list[dict]):
    """A torch module computing ``OUTPUTS`` from the 300x300 blob, with the weights of ``net``
    (batch norms folded into the convolutions)."""
    import torch
    import torch.nn.functional as F

    steps: list[tuple] = []
    convs = torch.nn.ModuleList()
    conv_of: dict[str, int] = {}
    biased: set[str] = set()
    alias: dict[str, str] = {}
    shape: dict[str, int] = {"image_tensor": INPUT}  # spatial size of each output (square input)

    def src(name: str) -> str:
        while name in alias:
            name = alias[name]
        return name

    for n in nodes:
        op, name = n["op"], n["name"]
        first = src(n["input"][0]) if n["input"] else None
        if op in ("Conv2D", "DepthwiseConv2dNative"):
            blobs = net.getLayer(name).blobs
            weight = torch.from_numpy(np.array(blobs[0], dtype=np.float32))
            bias = np.array(blobs[1], dtype=np.float32).reshape(-1) if len(blobs) > 1 else np.zeros(weight.shape[0], np.float32)
            if len(blobs) > 1:
                biased.add(name)
            groups = weight.shape[0] if op == "DepthwiseConv2dNative" else 1
            stride, kernel = int(n["attr"]["strides"][1]), weight.shape[-1]
            conv = torch.nn.Conv2d(weight.shape[1] * groups, weight.shape[0], kernel, stride, groups=groups)
            conv.weight.data, conv.bias.data = weight, torch.from_numpy(bias)
            conv_of[name] = len(convs)
            convs.append(conv)
            pad = _same_padding(shape[first], kernel, stride)
            shape[name] = -(-shape[first] // stride)
            steps.append(("conv", name, first, (conv_of[name], pad)))
        elif op == "FusedBatchNorm":
            mean, var, gamma, beta = (np.array(b, dtype=np.float64).reshape(-1) for b in net.getLayer(name).blobs)
            scale = gamma / np.sqrt(var + float(n["attr"]["epsilon"][0]))
            conv = convs[conv_of[first]]
            conv.weight.data = (conv.weight.data.double() * torch.from_numpy(scale).view(-1, 1, 1, 1)).float()
            conv.bias.data = torch.from_numpy(((conv.bias.data.double().numpy() - mean) * scale + beta).astype(np.float32))
            alias[name] = first
        elif op == "Identity" or (op == "BiasAdd" and first in biased):
            alias[name] = first
        elif op in ("Relu6", "Sigmoid", "Flatten", "Mul", "Sub"):
            steps.append((op, name, first, None))
            shape[name] = shape.get(first, 0)
        elif op == "Add":
            steps.append(("Add", name, [src(i) for i in n["input"][:2]], None))
            shape[name] = shape[first]
        elif op == "ConcatV2" and name in ("BoxEncodingPredictor/concat", "ClassPredictor/concat"):
            steps.append(("Concat", name, [src(i) for i in n["input"][:-1]], None))
        elif op in ("Placeholder", "Const", "PriorBox", "DetectionOutput", "ConcatV2"):
            continue
        else:
            raise RuntimeError(f"unexpected layer {op} ({name}) in the detector graph")
    # the preprocessor's constants, read back from OpenCV (x * 2/255 - 1 for this graph)
    probe = np.stack([np.zeros((INPUT, INPUT, 3), np.float32), np.full((INPUT, INPUT, 3), 255, np.float32)])
    net.setInput(np.ascontiguousarray(probe.transpose(0, 3, 1, 2)))
    low, high = (float(v) for v in net.forward("Preprocessor/sub")[:, 0, 0, 0])
    scale, shift = (high - low) / 255.0, low
    outputs = [src(o) for o in OUTPUTS]

    class SSD(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.convs = convs

        def forward(self, x):
            env = {"image_tensor": x}
            for kind, name, inp, extra in steps:
                if kind == "conv":
                    index, (before, after) = extra
                    t = env[inp]
                    if before != after:
                        t = F.pad(t, (before, after, before, after))
                        before = 0
                    conv = self.convs[index]
                    y = F.conv2d(t, conv.weight, conv.bias, conv.stride, before, 1, conv.groups)
                elif kind == "Relu6":
                    y = env[inp].clamp(0.0, 6.0)
                elif kind == "Sigmoid":
                    y = env[inp].sigmoid()
                elif kind == "Flatten":  # TensorFlow flattens NHWC
                    y = env[inp].permute(0, 2, 3, 1).reshape(env[inp].shape[0], -1)
                elif kind == "Add":
                    y = env[inp[0]] + env[inp[1]]
                elif kind == "Concat":
                    y = torch.cat([env[i] for i in inp], 1)
                elif kind == "Mul":
                    y = env[inp] * scale
                elif kind == "Sub":
                    y = env[inp] + shift
                env[name] = y
            return tuple(env[o] for o in outputs)

    return SSD().eval()


class OnnxSSD:
    """``run(blob)`` -> (box encodings (N, 4), class scores (N, 91)) for one 300x300 blob."""

    def __init__(self, net, graph_text: str, threads: int | None) -> None:
        import torch

        from models.offline.ort import session

        self.session = session(build_torch(net, parse_graph(graph_text)), torch.zeros(1, 3, INPUT, INPUT),
                               threads=threads)
        net.setInput(np.zeros((1, 3, INPUT, INPUT), np.float32))
        priors = np.asarray(net.forward(PRIORS))[0]
        self.priors, self.variances = priors[0].reshape(-1, 4), priors[1].reshape(-1, 4)

    def run(self, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores = self.session.run(None, {"input": blob})
        return boxes.reshape(-1, 4), scores.reshape(-1, NUM_CLASSES)


def decode(loc: np.ndarray, priors: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """OpenCV's CENTER_SIZE decoding: x0, y0, x1, y1 (OpenCV's importer reorders TensorFlow's
    y, x, h, w in the graph, so the encodings arrive as x, y, w, h)."""
    pw, ph = priors[:, 2] - priors[:, 0], priors[:, 3] - priors[:, 1]
    pcx, pcy = (priors[:, 0] + priors[:, 2]) / 2, (priors[:, 1] + priors[:, 3]) / 2
    cx = variances[:, 0] * loc[:, 0] * pw + pcx
    cy = variances[:, 1] * loc[:, 1] * ph + pcy
    w = np.exp(variances[:, 2] * loc[:, 2]) * pw
    h = np.exp(variances[:, 3] * loc[:, 3]) * ph
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    if b[0] > a[2] or b[2] < a[0] or b[1] > a[3] or b[3] < a[1]:
        return 0.0
    inter = (min(a[2], b[2]) - max(a[0], b[0])) * (min(a[3], b[3]) - max(a[1], b[1]))

    def size(x: np.ndarray) -> float:
        return 0.0 if x[2] < x[0] or x[3] < x[1] else float((x[2] - x[0]) * (x[3] - x[1]))

    return float(inter / (size(a) + size(b) - inter))


def detection_output(loc: np.ndarray, scores: np.ndarray, priors: np.ndarray, variances: np.ndarray,
                     min_score: float) -> list[tuple[int, float, np.ndarray]]:
    """(class id, score, box) of the detections OpenCV's DetectionOutput layer returns with a
    score of at least ``min_score`` (>= its own 0.01 threshold), in its order (best first).

    Greedy NMS keeps or drops a box by the boxes above it only, and the per-class and overall
    caps (100) drop the lowest scores first, so the boxes at or above ``min_score`` come out
    the same whether or not the ones below it are computed: only those are."""
    if min_score < CONFIDENCE_THRESHOLD:
        raise ValueError("min_score below the graph's own confidence threshold")
    rows, cols = np.nonzero(scores[:, 1:] >= min_score)
    if rows.size == 0:
        return []
    boxes = decode(loc[rows], priors[rows], variances[rows])
    kept: list[tuple[float, int, int]] = []  # (score, class, candidate index)
    for c in np.unique(cols):
        mine = np.nonzero(cols == c)[0]
        class_scores = scores[rows[mine], c + 1]
        order = mine[np.argsort(-class_scores, kind="stable")][:TOP_K]
        chosen: list[int] = []
        for i in order:
            if all(_overlap(boxes[i], boxes[j]) <= NMS_THRESHOLD for j in chosen):
                chosen.append(i)
        kept += [(float(scores[rows[i], c + 1]), int(c + 1), int(i)) for i in chosen]
    # OpenCV returns them best first over all classes (a stable sort of class-ordered lists)
    kept = sorted(kept, key=lambda k: -k[0])[:KEEP_TOP_K]
    return [(c, score, boxes[i]) for score, c, i in kept]


def graph_text(folder: Path) -> str:
    return (folder / "ssd_mobilenet_v2_coco_2018_03_29.pbtxt").read_text(encoding="utf-8")
