"""Does a dynamic INT8 MatMul give the same numbers on every x86 kernel? (one op, seconds)

    python scripts/experiments/int8_kernel_isa.py OUT                   # native (e.g. AVX-512 VNNI)
    qemu-x86_64 -cpu Haswell .venv/bin/python scripts/experiments/int8_kernel_isa.py OUT  # AVX2

Builds one float MatMul (768 -> 3072, LiteMedSAM's MLP width) with heavy-tailed weights,
quantizes it with each dynamic recipe of :data:`skinscreen.export.variants.INT8_WEIGHTS`, runs it
on activations whose uint8 codes sit near 255 (where u8 x s8 pair sums overflow int16) and saves
the outputs to ``OUT/<cpu>.npz``; the second run prints max |difference| vs the first, per recipe.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np


def main(out: Path) -> None:
    import onnx
    import onnxruntime as ort
    from numpy._core._multiarray_umath import __cpu_features__ as feats
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from skinscreen.export.variants import INT8_WEIGHTS

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    w = (rng.standard_t(3, (768, 3072)) * 0.05).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="/mlp/fc1/MatMul")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 768])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 3072])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    src = out / "matmul.onnx"
    onnx.save(model, str(src))
    x = np.abs(rng.standard_normal((64, 768))).astype(np.float32) + 2.0  # codes near 255
    x[:, ::7] = 0.0  # the zero point stays at 0: the range is [0, max]
    cls = "avx512" if feats.get("AVX512F") else ("avx2" if feats.get("AVX2") else "other")
    results = {"fp32": ort.InferenceSession(str(src)).run(None, {"x": x})[0]}
    for name, (wtype, reduce, _) in INT8_WEIGHTS.items():
        dst = out / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                str(src), str(dst), per_channel=True, reduce_range=reduce,
                weight_type=getattr(QuantType, wtype),
            )  # fmt: skip
        results[name] = ort.InferenceSession(str(dst)).run(None, {"x": x})[0]
    np.savez(out / f"{cls}.npz", **results)
    print("cpu features:", sorted(k for k, v in feats.items() if v and k.startswith("AVX")))
    ref = np.abs(results["fp32"]).max()
    for name in INT8_WEIGHTS:
        err = np.abs(results[name] - results["fp32"]).max() / ref
        print(f"{cls} {name}: max relative error vs fp32 {err:.4f}")
    others = [p for p in out.glob("*.npz") if p.stem != cls]
    for p in others:
        other = np.load(p)
        for name in INT8_WEIGHTS:
            d = np.abs(results[name] - other[name]).max() / ref
            print(f"{cls} vs {p.stem} {name}: max relative difference {d:.2e}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
