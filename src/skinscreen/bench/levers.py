"""Speed levers of ONNX Runtime, measured rather than guessed (``skinscreen bench --levers``).

For one encoder graph: intra-op threads (1 vs 2), graph optimisation level (basic vs all),
thread spinning (on vs off), and session creation time from ``.onnx`` (optimised at load), from a
saved optimised model (``optimized_model_filepath``) and from the ``.ort`` file when the bundle
has one. Timings are interleaved medians of ``repeat`` runs on the same input.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np


def _session(
    path: Path, threads: int, level: str = "all", spinning: bool = True, save: Path | None = None
):
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    o.log_severity_level = 3
    o.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }[level]
    if not spinning:
        o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if save is not None:
        o.optimized_model_filepath = str(save)
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def _create_s(path: Path, threads: int, level: str = "all") -> float:
    t0 = time.perf_counter()
    _session(path, threads, level)
    return time.perf_counter() - t0


def measure_levers(
    encoder: Path, ort_encoder: Path | None, threads: int = 2, repeat: int = 5
) -> dict:
    """Encoder medians (ms) per setting and session creation times (s)."""
    x = np.random.default_rng(0).random((1, 3, 256, 256), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "encoder.optimized.onnx"
        _session(encoder, threads, save=saved)
        configs = {
            f"threads={threads}, opt=all, spinning": _session(encoder, threads),
            "threads=1, opt=all, spinning": _session(encoder, 1),
            f"threads={threads}, opt=basic, spinning": _session(encoder, threads, "basic"),
            f"threads={threads}, opt=all, no spinning": _session(encoder, threads, spinning=False),
        }
        for s in configs.values():
            s.run(None, {"image": x})
        times: dict[str, list[float]] = {k: [] for k in configs}
        for _ in range(repeat):
            for k, s in configs.items():
                t0 = time.perf_counter()
                s.run(None, {"image": x})
                times[k].append((time.perf_counter() - t0) * 1e3)
        create = {
            ".onnx, optimised at load": _create_s(encoder, threads),
            "saved optimised .onnx (optimized_model_filepath), opt=none": _create_s(
                saved, threads, "none"
            ),
        }
        if ort_encoder is not None and ort_encoder.is_file():
            create[".ort (ORT format)"] = _create_s(ort_encoder, threads, "none")
    return {
        "encoder": str(encoder),
        "encoder_ms_median": {k: round(float(np.median(v)), 1) for k, v in times.items()},
        "session_create_s": {k: round(v, 3) for k, v in create.items()},
    }
