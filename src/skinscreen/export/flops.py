"""Count the floating-point operations of an ONNX graph from its MatMul / Gemm / Conv shapes.

Convention: one multiply-add = 2 FLOP. Only the dense ops are counted (MatMul, Gemm, Conv,
ConvTranspose); element-wise ops, softmax and normalisation add a few percent at most. Needs the
``onnx`` package (export extra); the result is stored in the bundle manifest (``compute``) so the
torch- and onnx-free benchmark can report achieved GFLOP/s.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np


def _shapes(model) -> dict[str, list[int]]:
    # onnxruntime's symbolic inference propagates Shape/Reshape constants (plain ONNX shape
    # inference leaves the attention reshapes unknown)
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    inferred = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    g = inferred.graph
    out: dict[str, list[int]] = {}
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            out[vi.name] = [int(d.dim_value) for d in dims]
    for init in g.initializer:
        out[init.name] = [int(d) for d in init.dims]
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    out[n.output[0]] = [int(d) for d in a.t.dims]
    return out


def count_flops(path: str | Path) -> dict:
    """FLOPs of the ONNX graph at ``path`` (static shapes): ``{"total_gflop", "by_op": {...}}``."""
    import onnx

    model = onnx.load(str(path))
    shapes = _shapes(model)
    by_op: Counter = Counter()
    unknown = 0
    for n in model.graph.node:
        if n.op_type not in ("MatMul", "Gemm", "Conv", "ConvTranspose"):
            continue
        try:
            if n.op_type in ("MatMul", "Gemm"):
                a, b = shapes[n.input[0]], shapes[n.input[1]]
                trans_b = any(at.name == "transB" and at.i for at in n.attribute)
                k = a[-1]
                cols = b[-2] if trans_b else b[-1]
                rows = int(np.prod(a[:-1]))
                batch_b = int(np.prod(b[:-2])) if len(b) > 2 else 1
                batch = max(1, batch_b // max(1, int(np.prod(a[:-2])) if len(a) > 2 else 1))
                by_op[n.op_type] += 2 * rows * k * cols * batch
            elif n.op_type == "Conv":
                w, y = shapes[n.input[1]], shapes[n.output[0]]
                by_op["Conv"] += 2 * int(np.prod(y)) * int(np.prod(w[1:]))
            else:  # ConvTranspose: every input pixel scatters C_out * kh * kw MACs
                w, x = shapes[n.input[1]], shapes[n.input[0]]
                by_op["ConvTranspose"] += 2 * int(np.prod(x)) * int(np.prod(w[1:]))
        except KeyError:
            unknown += 1
    total = sum(by_op.values())
    return {
        "total_gflop": round(total / 1e9, 3),
        "by_op_gflop": {k: round(v / 1e9, 3) for k, v in by_op.most_common()},
        "uncounted_nodes": unknown,
        "convention": "2 FLOP per multiply-add; MatMul, Gemm, Conv, ConvTranspose only",
    }
