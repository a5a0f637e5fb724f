"""Edge variants of a model bundle: INT8 / FP16 ONNX, ONNX Runtime Mobile (``.ort``), CoreML.

``add_variants(bundle_dir, formats, precisions, force)`` builds every requested
``<format>-<precision>`` variant from the bundle's fp32 ONNX graphs (and, for CoreML, from the
PyTorch model), checks each one with the accuracy gate (:mod:`skinscreen.export.gate`) and writes
only those that pass (or all of them with ``force``), each in its own sub-directory
``<bundle>/<format>-<precision>/``. The manifest records every variant's files (sha256, bytes),
how it was made and its measured accuracy, and ``default_variant`` becomes the fastest variant
that passed the gate (order measured in BENCHMARKS.md: :data:`CPU_PREFERENCE`).

Variants:

- ``onnx-int8``: weight MatMuls (encoder) and MatMul/Gemm (decoder) dynamically quantized: uint8
  per-output-channel weights (U8U8, :data:`INT8_WEIGHTS`), uint8 activations quantized per call
  (no calibration data needed, so every machine builds the same bundle). ONNX Runtime's u8 x u8
  kernels widen to 16 bits before multiplying, so the integer results are the same on AVX2 and
  AVX-512 (VNNI) kernels and the gate's figures hold on every x86 class (``gate.isa_checked``);
  full-range int8 weights (``int8_method="dynamic-s8"``, the recipe before) saturate in int16
  on CPUs without VNNI (``vpmaddubsw``) and fail the gate there; ``"dynamic-7bit"``
  (``reduce_range``) is exact too but loses more accuracy (mask Dice vs fp32 0.9906 / 0.9716 on
  17 gate photos vs 0.9952 / 0.9875 for U8U8). The encoder's MLP down-projections (``fc2``) stay
  float32 (:data:`SENSITIVE_MATMUL`); convolutions stay float32 (int8 convolutions fail the
  gate). ``int8_method="qdq"`` instead calibrates static QDQ
  activations on lesions-train photos (never the gate photos); ``"dynamic-all"`` quantizes
  every MatMul and Conv per tensor (fails the gate: kept to test the gate).
- ``onnx-int8w``: the smallest variant: every float weight of the fp32 graphs with at least
  :data:`WEIGHT_ONLY_MIN_ELEMENTS` elements stored as int8 (symmetric; per output channel for Conv
  and MatMul weights, per tensor otherwise, e.g. the decoder's dense positional encoding) behind an
  ONNX ``DequantizeLinear``; activations and arithmetic stay float32 (weight-only quantization, no
  calibration). About a quarter of the fp32 size; passes the gate for the distilled student
  (8.6 MB) but not for LiteMedSAM's TinyViT (mask Dice vs fp32 0.96). No CoreML counterpart
  (``coreml-int8`` is already weight-compressed).
- ``onnx-int8w16``: ``onnx-int8w`` with the convolution weights outside the encoder neck (the
  BN-folded ones, which int8 storage cannot afford) and the first attention stage's MatMul
  weights stored as float16 behind a ``Cast`` (:func:`int8w16_fp16`), and the decoder's dense
  positional encoding computed at load instead of stored (:func:`positions_in_graph`). The
  smallest LiteMedSAM variant that passes the gate (11.0 MB; its ``onnx-int8w``, 11.3 MB, fails
  it). Same runtime as ``onnx-int8w`` (fp32 arithmetic; the ``DequantizeLinear``, ``Cast`` and
  positional-encoding nodes are folded at load).
- ``onnx-fp16``: every float tensor in fp16, float32 inputs/outputs kept (slow on x86 CPUs: ORT
  inserts casts around ops without fp16 kernels; meant for GPU/NNAPI/XNNPACK-fp16 targets).
- ``ort-<p>``: the ``onnx-<p>`` graphs converted with onnxruntime's own tool
  (``python -m onnxruntime.tools.convert_onnx_models_to_ort``) plus the reduced-operator config
  a minimal ORT build needs (``--include_ops_by_config``).
- ``coreml-<p>``: encoder and decoder ``.mlpackage`` (mlprogram, iOS16+, compute units ALL);
  fp32 / fp16 compute; ``int8`` = fp16 compute with int8 linear (per-channel) weight compression.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from skinscreen.engine.select import CPU_PREFERENCE as RUNTIME_CPU_PREFERENCE
from skinscreen.errors import BundleError, SkinscreenError

FORMATS = ("onnx", "ort", "coreml")
PRECISIONS = ("fp32", "fp16", "int8", "int8w", "int8w16")
WEIGHT_ONLY = ("int8w", "int8w16")
WEIGHT_ONLY_MIN_ELEMENTS = 1024
INT8W_SESSION_CONFIG = {"session.disable_quant_qdq": "1"}
INT8_METHODS = ("dynamic", "dynamic-7bit", "dynamic-s8", "qdq", "dynamic-all")
# Weight formats of the dynamic INT8 recipes: (onnxruntime QuantType name, reduce_range, what).
# Without VNNI, ONNX Runtime's x86 u8 x s8 kernels (AVX2, AVX-512 without VNNI) add pairs of
# products in int16 (vpmaddubsw), which saturates: 2 x 255 x 127 > 32767. Weights in the 7-bit
# range (reduce_range: -64..64) keep every pair sum within int16 (2 x 255 x 64 = 32640), so the
# integer arithmetic is exact on every x86 kernel; u8 x u8 weights (U8U8, shipped: more
# accurate than 7-bit) use kernels that widen to 16 bits first (exact too).
INT8_WEIGHTS = {
    "dynamic": ("QUInt8", False, "uint8 asymmetric per output channel (U8U8 kernels)"),
    "dynamic-7bit": ("QInt8", True, "int8 symmetric per output channel, 7-bit (reduce_range)"),
    "dynamic-s8": ("QInt8", False, "int8 symmetric per output channel, full 8-bit range"),
}
ISA_EXACT_NOTE = (
    "u8 x s8 pair sums fit int16 (7-bit weights): the same integer results on AVX2 and "
    "AVX-512 (with or without VNNI) kernels; ARM64 not measured"
)
CALIBRATION_PHOTOS = 16
# Fastest first (BENCHMARKS.md): the runtime's order (skinscreen.engine.select), one definition.
CPU_PREFERENCE = RUNTIME_CPU_PREFERENCE
PLATFORM_PREFERENCE = {
    "cpu-x86_64": CPU_PREFERENCE,
    # x86-64 with native bf16 and the Python runtime's OpenVINO engine (skinscreen.engine.select)
    "cpu-x86_64-bf16": ("openvino-bf16", *CPU_PREFERENCE),
    "android": ("ort-int8", "ort-fp32", "ort-fp16"),
    "ios": ("coreml-fp16", "coreml-int8", "coreml-fp32", "ort-int8", "ort-fp32"),
}
# The re-prompt pair (skinscreen.export.models.reprompt) is written once, in fp32, at the bundle
# root; onnx-* variants list the same files (the Python runtime runs them with the variant's
# encoder instead of the variant's decoder). ORT-format and CoreML variants (apps) do not.
REPROMPT_PARTS = ("prelude", "prompt_decoder")
REPROMPT_NOTE = (
    "prelude and prompt_decoder are onnx-fp32's fp32 files (an exact rewrite of the fp32 "
    "decoder); the Python runtime runs them instead of this variant's decoder, apps may too"
)
_REPO = Path(__file__).resolve().parents[3]
TRAIN_IMAGES = _REPO.parent / "shared" / "data" / "lesions-train" / "images"

Progress = Callable[[str], None]


def variant_key(fmt: str, precision: str) -> str:
    """Manifest key of a variant, e.g. ``("ort", "int8") -> "ort-int8"``."""
    return f"{fmt}-{precision}"


def parse_choices(value: str | Iterable[str], allowed: tuple[str, ...], what: str) -> list[str]:
    """``"onnx,ort"`` (or a list) -> validated, de-duplicated list in ``allowed`` order."""
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [s.strip().lower() for s in items if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad or not items:
        raise SkinscreenError(
            f"unknown {what} {', '.join(bad) or '(empty)'}: choose any of {','.join(allowed)}"
        )
    return [a for a in allowed if a in items]


def requested_variants(formats: Iterable[str], precisions: Iterable[str]) -> list[str]:
    """Every ``<format>-<precision>`` combination, in a stable order (no ``coreml-int8w`` or
    ``coreml-int8w16``: ``coreml-int8`` is the CoreML weight-only variant)."""
    return [
        variant_key(f, p)
        for f in formats
        for p in precisions
        if not (f == "coreml" and p in WEIGHT_ONLY)
    ]


# -- files --------------------------------------------------------------------------------------


def sha256_path(path: Path) -> tuple[str, int]:
    """(sha256, bytes) of a file, or of a directory (an ``.mlpackage``): the sha256 of the sorted
    lines ``<relative path> <sha256 of file>`` and the total size of its files."""
    if path.is_file():
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        return h.hexdigest(), path.stat().st_size
    lines, total = [], 0
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest, n = sha256_path(f)
        lines.append(f"{f.relative_to(path).as_posix()} {digest}\n")
        total += n
    return hashlib.sha256("".join(lines).encode()).hexdigest(), total


def file_entry(path: Path, rel: str) -> dict:
    """Manifest entry ``{"path": rel, "sha256", "bytes"}`` (+ ``"kind": "directory"``)."""
    digest, n = sha256_path(path)
    e = {"path": rel, "sha256": digest, "bytes": n}
    if path.is_dir():
        e["kind"] = "directory"
        e["sha256_of"] = "sorted lines '<relative path> <sha256>' of the files inside"
    return e


# -- ONNX graph helpers ---------------------------------------------------------------------------


# MLP down-projections (input: the GELU output, heavy-tailed): int8 activations there cost up to
# a point of mask Dice (and fail the gate once converted for ARM), so they stay float32.
SENSITIVE_MATMUL = "/mlp/fc2/"


def _sensitive_matmuls(model) -> list[str]:
    """Weight MatMuls kept in float32: the encoder's MLP down-projections (``mlp/fc2``)."""
    return [
        n.name for n in model.graph.node if n.op_type == "MatMul" and SENSITIVE_MATMUL in n.name
    ]


def _activation_matmuls(model) -> list[str]:
    """Names of MatMul nodes whose inputs are both activations (attention q@k, attn@v)."""
    consts = {i.name for i in model.graph.initializer}
    consts |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    return [
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul" and not any(i in consts for i in n.input)
    ]


class _PhotoReader:
    """onnxruntime CalibrationDataReader over preprocessed photos (``{"image": (1,3,S,S)}``)."""

    def __init__(self, spec, photos: list[Path]):
        from skinscreen.io.image import load_image
        from skinscreen.preprocess.transforms import preprocess

        self._xs = [preprocess(spec, load_image(p))[0] for p in photos]
        self._i = 0

    def get_next(self):
        if self._i >= len(self._xs):
            return None
        self._i += 1
        return {"image": self._xs[self._i - 1]}

    def rewind(self):
        self._i = 0


def calibration_photos(directory: Path | None = None, n: int = CALIBRATION_PHOTOS) -> list[Path]:
    """``n`` evenly spaced photos of ``directory`` (default: the lesions-train set), or [] when
    there is none. Never the dev photos the gate evaluates with."""
    d = Path(directory) if directory is not None else TRAIN_IMAGES
    if not d.is_dir():
        return []
    photos = sorted(p for p in d.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not photos:
        return []
    return photos[:: max(1, len(photos) // n)][:n]


def quantize_encoder_int8(spec, src: Path, dst: Path, method: str, photos: list[Path]) -> dict:
    """INT8 encoder (see module docstring); returns the manifest's ``quantization`` record."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    graph = onnx.load(str(src))
    act = _activation_matmuls(graph)
    keep = act + _sensitive_matmuls(graph)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "qdq" and photos:
            quantize_static(
                str(src),
                str(dst),
                _PhotoReader(spec, photos),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=["MatMul"],
                nodes_to_exclude=keep,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
            rec = {
                "method": "static QDQ (onnxruntime.quantization.quantize_static)",
                "ops": "weight MatMuls except the MLP fc2 (attention q@k, attn@v stay float)",
                "weights": "int8 symmetric per output channel",
                "activations": "uint8 asymmetric per tensor, MinMax calibration",
                "calibration": {
                    "n_images": len(photos),
                    "source": str(photos[0].parent.parent.name),
                    "images": [p.name for p in photos],
                },
            }
        elif method == "qdq" or method in INT8_WEIGHTS:
            wtype, reduce, what = INT8_WEIGHTS["dynamic" if method == "qdq" else method]
            quantize_dynamic(
                str(src),
                str(dst),
                op_types_to_quantize=["MatMul"],
                nodes_to_exclude=keep,
                per_channel=True,
                reduce_range=reduce,
                weight_type=getattr(QuantType, wtype),
            )
            rec = dynamic_record(method if method in INT8_WEIGHTS else "dynamic")
            rec["ops"] = "weight MatMuls except the MLP fc2 (kept float32)"
            if method == "qdq":
                rec["note"] = "no calibration photos found: fell back to dynamic quantization"
        elif method == "dynamic-all":
            quantize_dynamic(
                str(src),
                str(dst),
                op_types_to_quantize=["MatMul", "Conv"],
                per_channel=False,
                weight_type=QuantType.QInt8,
            )
            rec = {
                "method": "dynamic on all MatMul and Conv ops, per tensor",
                "ops": "MatMul, Conv",
                "weights": "int8 per tensor",
                "activations": "uint8 quantized per call",
                "note": "known to lose accuracy (kept to show the gate rejecting it)",
            }
        else:
            raise SkinscreenError(f"unknown int8 method {method!r}: choose {INT8_METHODS}")
    rec["float32_matmuls"] = len(keep) - len(act)
    return rec


def decoder_computes_all_masks(path: Path) -> bool:
    """True for a decoder graph exported before the single-mask form
    (:class:`~skinscreen.export.onnx_export.DecoderGraph`): it still runs the hypernetwork MLP of
    every mask token and slices mask 0 at the end."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    names = [n.name for n in graph.node] + [t.name for t in graph.initializer]
    return any("output_hypernetworks_mlps.1" in n for n in names)


def dynamic_record(method: str) -> dict:
    """The ``quantization`` record of a dynamic INT8 recipe (:data:`INT8_WEIGHTS`)."""
    wtype, reduce, what = INT8_WEIGHTS[method]
    rec = {
        "method": "dynamic (onnxruntime.quantization.quantize_dynamic)",
        "recipe": method,
        "weights": what,
        "weight_type": wtype,
        "reduce_range": reduce,
        "activations": "uint8 quantized per call (no calibration)",
    }
    if reduce or wtype == "QUInt8":
        rec["isa_independent"] = (
            ISA_EXACT_NOTE
            if reduce
            else "u8 x u8 kernels widen to 16 bits: the same integer results on AVX2 and "
            "AVX-512 (VNNI) kernels; ARM64 not measured"
        )
    else:
        rec["isa_independent"] = False
        rec["isa_note"] = (
            "full-range int8 weights: without VNNI (AVX2) ONNX Runtime's u8 x s8 pair sums "
            "saturate in int16, so accuracy depends on the CPU"
        )
    return rec


def quantize_decoder_int8(src: Path, dst: Path, method: str = "dynamic") -> dict:
    """INT8 decoder: dynamic per-output-channel weight MatMul/Gemm, in the weight format of the
    encoder's recipe ``method`` (:data:`INT8_WEIGHTS`; the QDQ and all-ops recipes use
    ``dynamic``'s)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    method = method if method in INT8_WEIGHTS else "dynamic"
    wtype, reduce, _ = INT8_WEIGHTS[method]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            str(src),
            str(dst),
            op_types_to_quantize=["MatMul", "Gemm"],
            nodes_to_exclude=_activation_matmuls(onnx.load(str(src))),
            per_channel=True,
            reduce_range=reduce,
            weight_type=getattr(QuantType, wtype),
        )
    rec = dynamic_record(method)
    rec["ops"] = "weight MatMul and Gemm"
    return rec


# onnx-int8w16: the encoder's BN-folded convolutions are what int8 weight storage cannot afford
# (LiteMedSAM int8w mask Dice vs fp32 0.957; int8 MatMuls alone 0.9945, the neck alone 0.9994):
# they stay float16, and so do the MatMuls of TinyViT's first attention stage (0.39 M weights,
# the most sensitive: up to 2% embedding error from one int8 tensor; mask Dice vs fp32 on the 17
# gate photos 0.9922 -> 0.9943 for +0.39 MB). The neck's two convolutions (LayerNorm2d, not
# BN-folded) stay int8 for size.
INT8W16_INT8_CONVS = "/neck/"
INT8W16_FP16_MATMULS = "/image_encoder/layers.1/"
INT8W16_NOTE = (
    "Conv weights float16 (Cast to float32) except the encoder neck's (int8), and the MatMul "
    "weights of the encoder's first attention stage (layers.1) float16; other MatMul/Gemm "
    "weights and large constants int8 as in onnx-int8w"
)


def int8w16_fp16(name: str, op_type: str, node_name: str) -> bool:
    """``onnx-int8w16``'s float16 selection for :func:`quantize_weights_only_int8`: the weights
    of every ``Conv`` outside the encoder neck (TinyViT's BN-folded convolutions) and of the
    ``MatMul`` nodes of the first attention stage (``/image_encoder/layers.1/``)."""
    if op_type == "Conv":
        return INT8W16_INT8_CONVS not in node_name
    return op_type == "MatMul" and INT8W16_FP16_MATMULS in node_name


def quantize_weights_only_int8(
    src: Path,
    dst: Path,
    min_elements: int = WEIGHT_ONLY_MIN_ELEMENTS,
    fp16: Callable[[str, str, str], bool] | None = None,
) -> dict:
    """Weight-only INT8 storage: each float32 initializer with at least ``min_elements`` elements
    becomes an int8 initializer and a scale, and an ONNX ``DequantizeLinear`` (opset 13+) restores
    the float32 tensor under its old name, so every consumer and all arithmetic stay float32.

    Symmetric (zero point 0, range +-127). Per output channel where the tensor is the weight of
    exactly one ``Conv`` (axis 0) or the right-hand side of one ``MatMul`` (last axis); per tensor
    otherwise (e.g. the decoder's dense positional encoding ``image_pe``).

    ``fp16(name, op_type, node_name)``: initializers it selects (``op_type`` and ``node_name``
    are the consumer's when there is exactly one, else ``""``) are stored as float16 behind a
    ``Cast`` to float32 instead (``onnx-int8w16`` keeps the BN-folded convolutions that way).
    onnxruntime folds both the ``DequantizeLinear`` (with ``session.disable_quant_qdq``) and the
    ``Cast`` at load.
    Returns the manifest's ``quantization`` record.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    users: dict[str, list[tuple[str, int, str]]] = {}
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            users.setdefault(name, []).append((node.op_type, i, node.name))
    restore, per_channel, per_tensor, half = [], 0, 0, 0
    for t in list(model.graph.initializer):
        if t.data_type != TensorProto.FLOAT or int(np.prod(t.dims)) < min_elements:
            continue
        w = numpy_helper.to_array(t).astype(np.float32)
        use = users.get(t.name, [])
        op, node_name = (use[0][0], use[0][2]) if len(use) == 1 else ("", "")
        if fp16 is not None and fp16(t.name, op, node_name):
            hi = numpy_helper.from_array(w.astype(np.float16), f"{t.name}_fp16")
            model.graph.initializer.remove(t)
            model.graph.initializer.append(hi)
            restore.append(
                helper.make_node(
                    "Cast", [hi.name], [t.name], name=f"{t.name}_cast", to=TensorProto.FLOAT
                )
            )
            half += 1
            continue
        axis = None
        if len(use) == 1 and use[0][1] == 1 and w.ndim >= 2:
            axis = {"Conv": 0, "MatMul": w.ndim - 1}.get(use[0][0])
        if axis is None:
            scale = np.float32(max(float(np.abs(w).max()), 1e-12) / 127.0)
            q = np.round(w / scale)
            per_tensor += 1
        else:
            other = tuple(i for i in range(w.ndim) if i != axis)
            scale = (np.maximum(np.abs(w).max(axis=other), 1e-12) / 127.0).astype(np.float32)
            shape = [1] * w.ndim
            shape[axis] = -1
            q = np.round(w / scale.reshape(shape))
            per_channel += 1
        qi = numpy_helper.from_array(np.clip(q, -127, 127).astype(np.int8), f"{t.name}_int8")
        si = numpy_helper.from_array(np.asarray(scale, np.float32), f"{t.name}_scale")
        model.graph.initializer.remove(t)
        model.graph.initializer.extend([qi, si])
        attrs = {} if axis is None else {"axis": axis}
        restore.append(
            helper.make_node(
                "DequantizeLinear", [qi.name, si.name], [t.name], name=f"{t.name}_dq", **attrs
            )
        )
    for node in reversed(restore):
        model.graph.node.insert(0, node)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    rec = {
        "method": "weight-only int8 storage (onnx DequantizeLinear), float32 arithmetic",
        "weights": f"float32 initializers with >= {min_elements} elements: int8 symmetric, per "
        "output channel for Conv/MatMul weights, per tensor otherwise",
        "activations": "float32 (not quantized; no calibration)",
        "per_channel_tensors": per_channel,
        "per_tensor_tensors": per_tensor,
    }
    if fp16 is not None:
        rec["float16_tensors"] = half
    return rec


def positions_in_graph(src: Path, dst: Path, gaussian: np.ndarray, name: str = "image_pe") -> dict:
    """Replace the decoder's stored dense positional encoding ``name`` ``(1, C, h, w)`` (a 1 M
    float constant for LiteMedSAM) with the few nodes that compute it, as
    :meth:`~skinscreen.export.models.sam_heads.RandomFourierPositions.grid` does:
    ``[sin(2 pi p G), cos(2 pi p G)]`` over the grid of cell centres ``p = 2 (x, y) - 1``.

    The grid's values are odd multiples of ``1/h`` and ``1/w`` minus one, exact in float16, so
    it is stored as float16 (8 K values); ``gaussian`` is the prompt encoder's ``(2, C/2)``
    matrix. Every input is constant, so onnxruntime computes the tensor once at load. Written
    only when the nodes reproduce the stored tensor (max difference < 1e-4); returns the
    manifest record (``{}`` when ``name`` is absent or does not match, ``dst`` then a copy).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    stored = next((t for t in model.graph.initializer if t.name == name), None)
    if stored is None or len(stored.dims) != 4:
        shutil.copyfile(src, dst)
        return {}
    _, c, h, w = stored.dims
    g = np.asarray(gaussian, np.float32)
    ys = (np.arange(h, dtype=np.float32) + 0.5) / h
    xs = (np.arange(w, dtype=np.float32) + 0.5) / w
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    grid = 2.0 * np.stack([xx, yy], axis=-1) - 1.0  # (h, w, 2)
    proj = np.float32(2.0 * np.pi) * (grid @ g)
    rebuilt = np.concatenate([np.sin(proj), np.cos(proj)], -1).transpose(2, 0, 1)[None]
    if (
        g.shape != (2, c // 2)
        or not np.array_equal(grid.astype(np.float16).astype(np.float32), grid)
        or float(np.abs(rebuilt - numpy_helper.to_array(stored)).max()) >= 1e-4
    ):
        shutil.copyfile(src, dst)
        return {}
    p = f"{name}_rebuild"
    consts = [
        numpy_helper.from_array(grid.astype(np.float16), f"{p}_grid_fp16"),
        numpy_helper.from_array(g, f"{p}_gaussian"),
        numpy_helper.from_array(np.asarray(2.0 * np.pi, np.float32), f"{p}_two_pi"),
        numpy_helper.from_array(np.asarray([1, c, h, w], np.int64), f"{p}_shape"),
    ]
    nodes = [
        helper.make_node("Cast", [f"{p}_grid_fp16"], [f"{p}_grid"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", [f"{p}_grid", f"{p}_gaussian"], [f"{p}_mm"]),
        helper.make_node("Mul", [f"{p}_mm", f"{p}_two_pi"], [f"{p}_proj"]),
        helper.make_node("Sin", [f"{p}_proj"], [f"{p}_sin"]),
        helper.make_node("Cos", [f"{p}_proj"], [f"{p}_cos"]),
        helper.make_node("Concat", [f"{p}_sin", f"{p}_cos"], [f"{p}_hwc"], axis=-1),
        helper.make_node("Transpose", [f"{p}_hwc"], [f"{p}_chw"], perm=[2, 0, 1]),
        helper.make_node("Reshape", [f"{p}_chw", f"{p}_shape"], [name]),
    ]
    for i, node in enumerate(nodes):
        node.name = f"/{p}/{node.op_type}_{i}"
    model.graph.initializer.remove(stored)
    model.graph.initializer.extend(consts)
    for node in reversed(nodes):
        model.graph.node.insert(0, node)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return {
        "computed": name,
        "note": f"{name} {[1, c, h, w]} computed from the (2, {c // 2}) Fourier matrix at load "
        "instead of stored",
    }


def convert_fp16(src: Path, dst: Path) -> None:
    """All float tensors to fp16; graph inputs/outputs stay float32 (``keep_io_types``)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(m, str(dst))


def convert_to_ort(onnx_dir: Path, out_dir: Path, target_platform: str = "arm") -> Path:
    """Run ``python -m onnxruntime.tools.convert_onnx_models_to_ort`` on ``onnx_dir``.

    Writes ``encoder.ort``, ``decoder.ort`` and the reduced-operator config (for a minimal ORT
    build: ``--include_ops_by_config``) into ``out_dir``; returns the config's path. ``Fixed``
    optimisation style (optimisations baked in, for the CPU EP) for ``target_platform``
    (``arm`` for phones; the graphs still run on x86).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "onnxruntime.tools.convert_onnx_models_to_ort",
        str(onnx_dir),
        "--output_dir",
        str(out_dir),
        "--optimization_style",
        "Fixed",
        "--target_platform",
        target_platform,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        raise BundleError(f"ORT format conversion failed: {' | '.join(tail)}")
    configs = sorted(out_dir.glob("*.config"))
    if not (out_dir / "encoder.ort").is_file() or not configs:
        raise BundleError(f"ORT format conversion wrote no .ort/.config files in {out_dir}")
    cfg = out_dir / "required_operators.config"
    if configs[0] != cfg:
        configs[0].rename(cfg)
    return cfg


# -- CoreML ----------------------------------------------------------------------------------------


def build_coreml(net, spec, precision: str, out_dir: Path) -> dict:
    """Convert the PyTorch encoder and decoder to ``.mlpackage`` (mlprogram, iOS16, ALL units).

    Inputs/outputs keep the ONNX names, shapes and float32 dtype, so an app feeds the same arrays
    as to the ONNX/ORT bundle. Returns the manifest's ``coreml`` record.
    """
    import coremltools as ct
    import torch

    from skinscreen.export.onnx_export import DecoderGraph, EncoderGraph, io_spec

    io = io_spec(spec)
    compute = ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16
    parts = {
        "encoder": (EncoderGraph(net, token_layout=False).eval(), io["encoder"]),
        "decoder": (DecoderGraph(net).eval(), io["decoder"]),
    }
    gen = torch.Generator().manual_seed(0)
    for part, (graph, pio) in parts.items():
        args = tuple(torch.rand(*i["shape"], generator=gen) for i in pio["inputs"])
        if part == "decoder":
            s = float(spec.input_size)
            args = (args[0], torch.tensor([[0.2 * s, 0.25 * s, 0.7 * s, 0.8 * s]]))
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(graph, args)
            model = ct.convert(
                traced,
                inputs=[
                    ct.TensorType(name=i["name"], shape=tuple(i["shape"]), dtype=np.float32)
                    for i in pio["inputs"]
                ],
                outputs=[ct.TensorType(name=o["name"], dtype=np.float32) for o in pio["outputs"]],
                convert_to="mlprogram",
                minimum_deployment_target=ct.target.iOS16,
                compute_units=ct.ComputeUnit.ALL,
                compute_precision=compute,
            )
            if precision == "int8":
                cfg = ct.optimize.coreml.OptimizationConfig(
                    global_config=ct.optimize.coreml.OpLinearQuantizerConfig(
                        mode="linear_symmetric", dtype="int8", granularity="per_channel"
                    )
                )
                model = ct.optimize.coreml.linear_quantize_weights(model, cfg)
        model.short_description = f"skinscreen {spec.name} {part} ({precision})"
        model.save(str(out_dir / f"{part}.mlpackage"))
    return {
        "model_type": "mlprogram",
        "minimum_deployment_target": "iOS16",
        "compute_units": "ALL",
        "compute_precision": "FLOAT32" if precision == "fp32" else "FLOAT16",
        "weights": {
            "fp32": "float32",
            "fp16": "float16",
            "int8": "int8 linear symmetric per channel (coremltools.optimize linear_quantize_weights)",
        }[precision],
        "converted_from": "PyTorch (torch.jit.trace) with coremltools",
    }


def reference_weights(net, onnx_files: list[Path], min_size: int = 2048) -> list[np.ndarray]:
    """Weights a CoreML package must round-trip to: the PyTorch state dict, the fp32 ONNX
    initializers, and the constants onnxruntime folds from them (e.g. attention-bias tables)."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    out = [v.detach().cpu().numpy() for v in net.state_dict().values() if v.numel() >= min_size]
    with tempfile.TemporaryDirectory() as tmp:
        for f in onnx_files:
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            opts.optimized_model_filepath = str(Path(tmp) / f"{f.stem}.folded.onnx")
            opts.log_severity_level = 3
            ort.InferenceSession(str(f), opts, providers=["CPUExecutionProvider"])
            for path in (f, Path(opts.optimized_model_filepath)):
                for i in onnx.load(str(path)).graph.initializer:
                    if int(np.prod(i.dims)) >= min_size:
                        out.append(numpy_helper.to_array(i))
    return out


# -- the builder ---------------------------------------------------------------------------------


@dataclass
class VariantResult:
    """One built variant (in a temporary directory until it is accepted)."""

    key: str
    format: str
    precision: str
    dir: Path
    files: dict[str, Path]
    details: dict = field(default_factory=dict)
    accuracy: dict = field(default_factory=dict)
    passed: bool = False
    reason: str = ""


@dataclass
class AddVariantsReport:
    """What :func:`add_variants` did: written variant keys, rejected ones with reasons, default."""

    bundle: Path
    written: list[str]
    rejected: dict[str, str]
    default_variant: str
    seconds: float
    manifest: dict


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def choose_default(variants: dict, preference: tuple[str, ...] = CPU_PREFERENCE) -> str:
    """First variant of ``preference`` present whose gate passed (never a forced failure)."""
    for key in preference:
        v = variants.get(key)
        if v is None:
            continue
        gate = v.get("accuracy", {}).get("gate", {"passed": True})
        if gate.get("passed", False):
            return key
    return "onnx-fp32"


def platform_defaults(variants: dict) -> dict:
    """Best gated variant per platform (``cpu-x86_64``, ``android``, ``ios``), where present."""
    out = {}
    for platform, pref in PLATFORM_PREFERENCE.items():
        key = choose_default(variants, pref)
        if key in pref or platform == "cpu-x86_64":
            out[platform] = key
    return out


_REFERENCES: dict[tuple, tuple] = {}


def reference_model(spec, checkpoint: Path | None = None):
    """The fp32 PyTorch model every variant of ``spec``'s bundle is gated against: the built
    model with its weights, or for a distilled student (shipped weights, ``checkpoint.kind ==
    "repo"``) the student encoder with its teacher's heads, as ``skinscreen distill
    --export-bundle`` exported it (``checkpoint``: other student weights)."""
    from skinscreen.export.models.build import BUILDERS
    from skinscreen.export.reference import load_model

    if spec.encoder in BUILDERS:
        return load_model(spec, checkpoint)
    from skinscreen.export.checkpoint import verify_sha256
    from skinscreen.train.ship import load_student_weights, student_sam, student_weights_path

    if checkpoint is None:
        checkpoint = student_weights_path(spec)
        verify_sha256(checkpoint, spec.checkpoint.sha256)
    student, meta = load_student_weights(checkpoint)
    return student_sam(student, meta.get("teacher", "litemedsam"))


def gate_reference(spec, checkpoint: Path | None = None, gate_images: list[Path] | None = None):
    """(PyTorch model, :class:`~skinscreen.export.gate.GateReference`) for the gate photos,
    computed once per process for the same model, weights and photos."""
    from skinscreen.export.gate import GateReference, gate_cases

    cases = gate_cases(gate_images)
    key = (spec.name, str(checkpoint), tuple(str(c.image) for c in cases))
    if key not in _REFERENCES:  # one PyTorch pass per process for the same model and photos
        _REFERENCES.clear()
        net = reference_model(spec, checkpoint)
        _REFERENCES[key] = (net, GateReference.build(spec, net, cases))
    return _REFERENCES[key]


def add_variants(
    bundle_dir: str | Path,
    formats: Iterable[str] = ("onnx",),
    precisions: Iterable[str] = ("fp32", "int8"),
    force: bool = False,
    *,
    gate_images: list[Path] | None = None,
    calibration_dir: Path | None = None,
    int8_method: str = "dynamic",
    progress: Progress | None = None,
    checkpoint: Path | None = None,
) -> AddVariantsReport:
    """Build, gate and write the requested variants into an existing fp32 bundle.

    Args:
        bundle_dir: a bundle written by ``skinscreen export`` (holds ``onnx-fp32``).
        formats: any of :data:`FORMATS`; precisions: any of :data:`PRECISIONS`.
        force: also write variants that fail the accuracy gate (flagged; never the default).
        gate_images: photos for the gate (default :func:`skinscreen.export.gate.gate_cases`).
        calibration_dir: photos for static INT8 calibration (default lesions-train).
        checkpoint: PyTorch weights for models without packaged weights (MedSAM ViT-B).
        int8_method: ``dynamic`` (default), ``qdq`` (static, calibrated) or ``dynamic-all`` (all
            MatMul and Conv ops per tensor: known to fail the gate).

    Raises :class:`BundleError` after writing the passing variants when any variant failed the
    gate without ``force`` (the message names each one with its figures).
    """
    from skinscreen.engine.bundle import read_manifest, verify_files
    from skinscreen.export import require_torch
    from skinscreen.export.gate import gate_record, measure_onnx
    from skinscreen.spec import get_spec

    require_torch("building bundle variants")
    import torch

    say = progress or (lambda msg: None)
    t_start = time.perf_counter()
    root = Path(bundle_dir)
    manifest = read_manifest(root)
    verify_files(root, manifest, "onnx-fp32")
    spec = get_spec(manifest["model"])
    formats = parse_choices(list(formats), FORMATS, "format")
    precisions = parse_choices(list(precisions), PRECISIONS, "precision")
    if int8_method not in INT8_METHODS:
        raise SkinscreenError(f"unknown int8 method {int8_method!r}: choose {INT8_METHODS}")
    wanted = [k for k in requested_variants(formats, precisions) if k != "onnx-fp32"]
    base = manifest["variants"]["onnx-fp32"]["files"]
    fp32 = {part: root / base[part]["path"] for part in ("encoder", "decoder")}
    # the fp32 re-prompt pair (bundles since it exists) serves every ONNX variant's Python runtime
    fast = (
        {part: root / base[part]["path"] for part in REPROMPT_PARTS}
        if all(part in base for part in REPROMPT_PARTS)
        else None
    )

    torch.set_num_threads(min(2, torch.get_num_threads()))
    say("loading the PyTorch model and computing fp32 reference masks on the gate photos")
    net, reference = gate_reference(spec, checkpoint, gate_images)

    work = Path(tempfile.mkdtemp(prefix=".variants-tmp-", dir=root))
    results: dict[str, VariantResult] = {}
    try:
        # converted variants start from a single-mask decoder, re-exported from the PyTorch model
        # when the bundle predates that form (same outputs, 3 hypernetwork MLPs fewer)
        src = dict(fp32)
        if decoder_computes_all_masks(fp32["decoder"]) and any(
            not k.startswith("coreml") and not k.endswith("-fp32") for k in wanted
        ):
            from skinscreen.export.onnx_export import export_decoder

            say("re-exporting the decoder in its single-mask form (the bundle's predates it)")
            src["decoder"] = export_decoder(net, spec, work / "decoder.single-mask.onnx")
        # onnx-<p> graphs are needed for ort-<p> too, even when only ort was asked for
        onnx_needed = sorted(
            {k.split("-", 1)[1] for k in wanted if not k.startswith("coreml")},
            key=PRECISIONS.index,
        )
        onnx_built: dict[str, VariantResult] = {}
        for p in onnx_needed:
            d = work / variant_key("onnx", p)
            d.mkdir()
            details: dict = {}
            if p == "fp32":
                for part in fp32:
                    shutil.copy2(fp32[part], d / f"{part}.onnx")
            elif p == "fp16":
                say("onnx-fp16: converting to float16")
                for part in src:
                    convert_fp16(src[part], d / f"{part}.onnx")
                details["conversion"] = "onnxruntime.transformers.float16, keep_io_types=True"
            elif p in WEIGHT_ONLY:
                say(f"onnx-{p}: weight-only int8 storage of the fp32 graphs")
                parts, keep16 = dict(src), None
                if p == "int8w16":
                    keep16 = int8w16_fp16
                    parts["decoder"] = work / "decoder.positions.onnx"
                    gaussian = net.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix
                    pe = positions_in_graph(
                        src["decoder"], parts["decoder"], gaussian.detach().cpu().numpy()
                    )
                details["quantization"] = {
                    part: quantize_weights_only_int8(path, d / f"{part}.onnx", fp16=keep16)
                    for part, path in parts.items()
                }
                if p == "int8w16":
                    for rec in details["quantization"].values():
                        rec["float16"] = INT8W16_NOTE
                    if pe:
                        details["quantization"]["decoder"]["positional_encoding"] = pe
                # ORT keeps DequantizeLinear nodes unfolded (for QDQ fusion) unless told not to;
                # folded at load, the graphs run at fp32 speed (unfolded: ~10% slower encoder)
                details["onnxruntime_session_config"] = dict(INT8W_SESSION_CONFIG)
            else:
                photos = calibration_photos(calibration_dir) if int8_method == "qdq" else []
                say(
                    f"onnx-int8: quantizing the encoder ({int8_method}"
                    + (f", {len(photos)} calibration photos)" if int8_method == "qdq" else ")")
                )
                enc = quantize_encoder_int8(
                    spec, src["encoder"], d / "encoder.onnx", int8_method, photos
                )
                say("onnx-int8: quantizing the decoder (dynamic)")
                dec = quantize_decoder_int8(src["decoder"], d / "decoder.onnx", int8_method)
                details["quantization"] = {"encoder": enc, "decoder": dec}
            onnx_built[p] = VariantResult(
                variant_key("onnx", p),
                "onnx",
                p,
                d,
                {part: d / f"{part}.onnx" for part in ("encoder", "decoder")},
                details,
            )
        for k in wanted:
            fmt, p = k.split("-")
            if fmt == "onnx":
                results[k] = onnx_built[p]
            elif fmt == "ort":
                say(f"{k}: converting to ORT format (onnxruntime.tools.convert_onnx_models_to_ort)")
                src = onnx_built[p]
                d = work / k
                cfg = convert_to_ort(src.dir, d)
                details = dict(src.details)
                details["conversion"] = {
                    "tool": "python -m onnxruntime.tools.convert_onnx_models_to_ort "
                    "--optimization_style Fixed --target_platform arm",
                    "onnxruntime": _ort_version(),
                    "minimal_build": "build onnxruntime with --minimal_build "
                    f"--include_ops_by_config {k}/required_operators.config",
                }
                results[k] = VariantResult(
                    k,
                    "ort",
                    p,
                    d,
                    {
                        "encoder": d / "encoder.ort",
                        "decoder": d / "decoder.ort",
                        "operators_config": cfg,
                    },
                    details,
                )
            else:
                say(f"{k}: converting with coremltools (mlprogram, iOS16, compute units ALL)")
                d = work / k
                d.mkdir()
                details = {"coreml": build_coreml(net, spec, p, d)}
                results[k] = VariantResult(
                    k,
                    "coreml",
                    p,
                    d,
                    {"encoder": d / "encoder.mlpackage", "decoder": d / "decoder.mlpackage"},
                    details,
                )
        # drop intermediate onnx graphs nobody asked for
        for r in onnx_built.values():
            if r.key not in wanted:
                shutil.rmtree(r.dir, ignore_errors=True)

        # the gate
        say(f"gate: fp32 ONNX on {len(reference.cases)} photos")
        fp32_acc = measure_onnx(reference, fp32["encoder"], fp32["decoder"], fast)
        fp32_acc["gate"] = gate_record(fp32_acc)
        sources = None
        for k, r in results.items():
            say(f"gate: {k}")
            if r.format == "coreml":
                from skinscreen.export.gate import check_coreml

                if sources is None:
                    sources = reference_weights(net, list(fp32.values()))
                r.accuracy = check_coreml(
                    {"encoder": r.files["encoder"], "decoder": r.files["decoder"]},
                    manifest["io"],
                    sources,
                    r.precision,
                )
                r.passed = r.accuracy["gate"]["passed"]
                r.reason = "structural checks passed" if r.passed else "structural checks failed"
            else:
                r.accuracy = measure_onnx(
                    reference,
                    r.files["encoder"],
                    r.files["decoder"],
                    fast if r.format == "onnx" else None,
                )
                r.accuracy["gate"] = gate_record(
                    r.accuracy, forced=force, isa_exact=_isa_exact(r.precision, r.details)
                )
                r.passed = r.accuracy["gate"]["passed"]
                r.reason = r.accuracy["gate"]["reason"]
            if not r.passed and force:
                r.accuracy["gate"]["forced"] = True

        accepted = [k for k, r in results.items() if r.passed or force]
        rejected = {k: r.reason for k, r in results.items() if k not in accepted}
        new_manifest = _updated_manifest(manifest, root, results, accepted, rejected, fp32_acc)
        _swap_in(root, work, results, accepted, new_manifest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = AddVariantsReport(
        root,
        accepted,
        rejected,
        new_manifest["default_variant"],
        time.perf_counter() - t_start,
        new_manifest,
    )
    if rejected:
        lines = "; ".join(f"{k}: {why}" for k, why in rejected.items())
        raise BundleError(
            f"variants not written (accuracy gate): {lines}. Pass --force to write them anyway"
            + (f"; written: {', '.join(accepted)}" if accepted else "")
        )
    return report


def _isa_exact(precision: str, details: dict) -> bool:
    """True for an INT8 variant whose every quantized graph uses an ISA-exact recipe
    (:data:`INT8_WEIGHTS`: 7-bit or u8 weights), so its gate holds on every x86 class."""
    q = details.get("quantization", {})
    return precision == "int8" and bool(q) and all(r.get("isa_independent") for r in q.values())


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def _updated_manifest(
    manifest: dict,
    root: Path,
    results: dict[str, VariantResult],
    accepted: list[str],
    rejected: dict[str, str],
    fp32_acc: dict,
) -> dict:
    m = json.loads(json.dumps(manifest))  # deep copy
    m["variants"]["onnx-fp32"]["accuracy"] = fp32_acc
    for k in accepted:
        r = results[k]
        files = {}
        for part, path in r.files.items():
            files[part] = file_entry(path, f"{k}/{path.relative_to(r.dir).as_posix()}")
        base = m["variants"]["onnx-fp32"]["files"]
        if r.format == "onnx" and all(part in base for part in REPROMPT_PARTS):
            for part in REPROMPT_PARTS:
                files[part] = dict(base[part])
        entry = {"format": r.format, "precision": r.precision, "files": files}
        if "prelude" in files:
            entry["reprompt"] = REPROMPT_NOTE
        entry.update(r.details)
        entry["accuracy"] = r.accuracy
        m["variants"][k] = entry
    from skinscreen.export.flops import count_flops

    m["compute"] = {
        part: count_flops(root / m["variants"]["onnx-fp32"]["files"][part]["path"])
        for part in ("encoder", "decoder")
    }
    m["default_variant"] = choose_default(m["variants"])
    m["platform_defaults"] = platform_defaults(m["variants"])
    m["gate"] = {
        "reference": "PyTorch fp32",
        "isa": fp32_acc["gate"]["isa"],
        "cpu_flags": fp32_acc["gate"]["cpu_flags"],
        "mean_dice_min": 0.99,
        "worst_dice_min": 0.95,
        "images": fp32_acc["images"],
        # refusals of earlier runs stay recorded unless this run measured the variant again
        "rejected": {
            **{
                k: v
                for k, v in (manifest.get("gate", {}).get("rejected") or {}).items()
                if k not in results and k not in m["variants"]
            },
            **{k: results[k].accuracy for k in rejected},
        },
    }
    versions = m.setdefault("versions", {})
    try:
        import coremltools

        versions["coremltools"] = coremltools.__version__
    except ImportError:
        pass
    m["variants_updated"] = datetime.now(UTC).isoformat(timespec="seconds")
    return m


def _swap_in(
    root: Path, work: Path, results: dict[str, VariantResult], accepted: list[str], manifest: dict
) -> None:
    """Move accepted variant directories into ``root`` and write the manifest last; on failure,
    restore what was there."""
    moved: list[tuple[Path, Path | None]] = []
    try:
        for k in accepted:
            dst = root / k
            old = None
            if dst.exists():
                old = root / f".{k}.old-{int(time.time() * 1000)}"
                dst.rename(old)
            moved.append((dst, old))
            results[k].dir.rename(dst)
        _write_json_atomic(root / "manifest.json", manifest)
    except BaseException:
        for dst, old in reversed(moved):
            shutil.rmtree(dst, ignore_errors=True)
            if old is not None:
                old.rename(dst)
        raise
    for _, old in moved:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


DEFAULT_FORMATS = ("onnx",)
DEFAULT_PRECISIONS = ("fp32", "int8")


def validate_choices(formats: str | None, precisions: str | None) -> None:
    """Check the CLI's ``--format`` / ``--precision`` values before any heavy work."""
    if formats is not None:
        parse_choices(formats, FORMATS, "format")
    if precisions is not None:
        parse_choices(precisions, PRECISIONS, "precision")


def export_variants_step(
    root: Path,
    formats: str | None,
    precisions: str | None,
    force: bool,
    say: Progress | None = None,
    checkpoint: Path | None = None,
) -> AddVariantsReport | None:
    """The variant step of ``skinscreen export`` after the fp32 bundle exists at ``root``.

    ``formats`` / ``precisions`` are the comma-separated CLI values (None: not given, meaning
    ``onnx`` and ``fp32,int8``, so the default bundle carries the fast CPU variant). With the
    defaults a gate rejection only warns (the bundle stays usable on ``onnx-fp32``); with explicit
    values it raises :class:`BundleError` (exit 1) after writing the variants that passed.
    """
    explicit = formats is not None or precisions is not None
    if not explicit and checkpoint is not None:
        return None  # user-supplied weights (e.g. MedSAM ViT-B): variants only when asked for
    fmts = parse_choices(formats or ",".join(DEFAULT_FORMATS), FORMATS, "format")
    precs = parse_choices(precisions or ",".join(DEFAULT_PRECISIONS), PRECISIONS, "precision")
    if not [k for k in requested_variants(fmts, precs) if k != "onnx-fp32"]:
        return None
    if "coreml" in fmts:
        import importlib.util

        if importlib.util.find_spec("coremltools") is None:
            from skinscreen.errors import MissingExtraError

            raise MissingExtraError("export", "--format coreml (coremltools)")
    try:
        report = add_variants(root, fmts, precs, force, progress=say, checkpoint=checkpoint)
    except BundleError as e:
        if explicit or "accuracy gate" not in str(e):
            raise
        if say:
            say(f"warning: {e}")
        return None
    if say:
        for k in report.written:
            v = report.manifest["variants"][k]
            a = v["accuracy"]
            mb = sum(int(f["bytes"]) for f in v["files"].values()) / 1e6
            if a.get("measured") is False:
                fig = "structural checks passed (CoreML cannot run on Linux)"
            else:
                fig = (
                    f"mask Dice vs fp32 mean {a['mask_dice_vs_fp32_mean']:.4f} "
                    f"min {a['mask_dice_vs_fp32_min']:.4f} on {a['n_images']} photos"
                )
            say(f"  {k}: {mb:.1f} MB, {fig}")
        say(f"default variant: {report.default_variant}")
    return report
