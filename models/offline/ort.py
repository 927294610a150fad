"""Torch modules exported to ONNX in memory and run by ONNX Runtime.

The bundled weights stay where they ship (a torch state dict, a TensorFlow graph read by
OpenCV); at load the network is exported once per process (a few seconds) and ONNX Runtime
runs it: on this project's small CPU models it is 2-3x faster per core than torch or OpenCV,
with outputs equal to about 1e-5, and it takes calls from several threads at once.
"""
from __future__ import annotations

import io
import threading
import warnings

_EXPORT = threading.Lock()  # torch's ONNX exporter keeps global state: one export at a time


def session(module, example, *, threads: int | None, batch_axis: bool = False):
    """An ONNX Runtime session running ``module`` (inputs named ``input``, outputs ``output0``...).

    ``threads``: intra-op threads per call, with no spinning pool (None: ONNX Runtime's default,
    one thread per core). ``batch_axis``: the first dimension of input and outputs may vary."""
    import onnxruntime as ort
    import torch

    with torch.no_grad():
        outputs = module(example)
    names = [f"output{i}" for i in range(len(outputs) if isinstance(outputs, tuple) else 1)]
    axes = {name: {0: "batch"} for name in ["input", *names]} if batch_axis else None
    buffer = io.BytesIO()
    with _EXPORT, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on constant shapes
        torch.onnx.export(module, (example,), buffer, dynamo=False, input_names=["input"], output_names=names,
                          dynamic_axes=axes, opset_version=17)
    model = buffer.getvalue()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

