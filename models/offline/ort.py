"""Torch modules exported to ONNX in memory and run by ONNX Runtime.

The bundled weights stay where they ship (a torch state dict, a TensorFlow graph read by
OpenCV); at load the network is exported once per process (a few seconds) and ONNX Runtime
runs it: on this project's small CPU models it is 2-3x faster per core than torch or OpenCV,
with outputs equal to about 1e-5, and it takes calls from several threads at once.
"""
from __future__ import annotations

import io
import os
import tempfile
import threading
import warnings

_EXPORT = threading.Lock()  # torch's ONNX exporter keeps global state: one export at a time


def session(module, example, *, threads: int | None, batch_axis: bool = False, spatial_axes: bool = False):
    """An ONNX Runtime session running ``module`` (inputs named ``input``, outputs ``output0``...).

    ``threads``: intra-op threads per call, with no spinning pool (None: ONNX Runtime's default,
    one thread per core). ``batch_axis``: the first dimension of input and outputs may vary.
    ``spatial_axes``: the input's height and width may vary, and so the outputs' first dimension."""
    import torch

    with torch.no_grad():
        outputs = module(example)
    names = [f"output{i}" for i in range(len(outputs) if isinstance(outputs, tuple) else 1)]
    axes = {name: {0: "batch"} for name in ["input", *names]} if batch_axis else None
    if spatial_axes:
        axes = {"input": {2: "height", 3: "width"}} | {name: {0: "rows"} for name in names}
    buffer = io.BytesIO()
    with _EXPORT, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on constant shapes
        torch.onnx.export(module, (example,), buffer, dynamo=False, input_names=["input"], output_names=names,
                          dynamic_axes=axes, opset_version=17)
    return model_session(buffer.getvalue(), threads=threads)


def model_session(model: bytes, *, threads: int | None):
    """An ONNX Runtime session for a serialized ONNX model, its padding folded into its
    convolutions first (``fold_pads``). ``threads`` as in ``session``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(fold_pads(model), options, providers=["CPUExecutionProvider"])


def fold_pads(model: bytes) -> bytes:
    """The model after ONNX Runtime's basic (portable) graph optimizations, with each zero
    Pad that feeds only a Conv folded into that Conv's own padding.

    TensorFlow's "SAME" padding on a stride-2 convolution pads one row and column after
    only; torch cannot say that in a convolution, so the export has a Pad before it, which
    ONNX Runtime keeps: a copy of the tensor and two layout conversions around it (its fast
    convolutions use a blocked channel layout). An ONNX Conv takes separate begin and end
    pads, so folded the outputs are the same bit for bit (the padding is zeros either way):
    the object detector takes about 3 ms less per image on one core (27.1 -> 24.1 ms, its
    pre- and post-processing included). The text gate's model has no such Pad but ran faster
    from the basic-optimized copy too (measured; ONNX Runtime optimizes that copy further at
    load)."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    with tempfile.TemporaryDirectory(prefix="alttext-onnx-") as folder:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = os.path.join(folder, "basic.onnx")
        ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        proto = onnx.load(options.optimized_model_filepath)
    graph = proto.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    users: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    folded = []
    for pad in graph.node:
        if pad.op_type != "Pad" or pad.output[0] in outputs or len(pad.input) < 2 or pad.input[1] not in constants:
            continue
        if any(a.name == "mode" and a.s != b"constant" for a in pad.attribute):
            continue
        if len(pad.input) > 2 and pad.input[2] and (pad.input[2] not in constants or constants[pad.input[2]].any()):
            continue  # pads with something other than zeros
        if len(pad.input) > 3 and pad.input[3]:
            continue  # an axes input: not the plain form
        widths = constants[pad.input[1]].tolist()
        # N, C, H, W begins then ends: only spatial, never negative (a crop)
        if len(widths) != 8 or any(widths[i] for i in (0, 1, 4, 5)) or min(widths) < 0:
            continue
        conv = users.get(pad.output[0], [])
        if len(conv) != 1 or conv[0].op_type != "Conv" or conv[0].input[0] != pad.output[0]:
            continue
        conv = conv[0]
        if any(a.name == "auto_pad" and a.s not in (b"", b"NOTSET") for a in conv.attribute):
            continue
        old = next((a for a in conv.attribute if a.name == "pads"), None)
        top, left, bottom, right = list(old.ints) if old is not None else [0, 0, 0, 0]
        if old is not None:
            conv.attribute.remove(old)
        conv.attribute.append(onnx.helper.make_attribute(
            "pads", [top + widths[2], left + widths[3], bottom + widths[6], right + widths[7]]))
        conv.input[0] = pad.input[0]
        folded.append(pad)
    for pad in folded:
        graph.node.remove(pad)
    return proto.SerializeToString()
