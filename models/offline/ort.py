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


def session(module, example, *, threads: int | None, batch_axis: bool = False, calibration=None):
    """An ONNX Runtime session running ``module`` (inputs named ``input``, outputs ``output0``...).

    ``threads``: intra-op threads per call, with no spinning pool (None: ONNX Runtime's default,
    one thread per core). ``batch_axis``: the first dimension of input and outputs may vary.
    ``calibration``: input arrays; when given, the network runs in int8 (``int8``)."""
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
    if calibration is not None:
        model = int8(model, calibration)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def int8(model: bytes, calibration) -> bytes:
    """``model`` with static int8 quantization (QDQ: weights per channel, activations uint8
    with ranges measured on the ``calibration`` inputs, at most a few seconds). On CPUs with
    VNNI ONNX Runtime then runs the convolutions in int8, about 3x faster than in float.
    Convolutions whose output goes straight to a Transpose (the prediction heads of the
    detector) stay in float: their outputs are the scores that thresholds are applied to."""
    import tempfile
    from pathlib import Path

    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    proto = onnx.load_from_string(model)
    consumers: dict[str, list] = {}
    for node in proto.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    heads = [n.name for n in proto.graph.node
             if n.op_type == "Conv" and "Transpose" in consumers.get(n.output[0], [])]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"input": x} for x in calibration])

        def get_next(self):
            return next(self.items, None)

    with tempfile.TemporaryDirectory(prefix="alttext-int8-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = Path(tmp) / "int8.onnx"
        quantize_static(proto, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=heads)
        return out.read_bytes()
