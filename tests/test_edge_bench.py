"""``skinscreen bench`` on the real model: one photo, ORT fp32 vs the PyTorch reference (child
process), cold start and peak RSS of a fresh process, achieved GFLOP/s next to a matmul peak."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_bench_json_one_photo():
    pytest.importorskip("torch")
    from skinscreen.engine.bundle import open_bundle

    root = open_bundle("litemedsam").root  # builds the default bundle when absent
    r = subprocess.run(
        [
            sys.executable, "-m", "skinscreen", "bench", "--bundle", str(root),
            "--variants", "onnx-fp32", "--limit", "1", "--json",
        ],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert set(out["pipelines"]) == {"pytorch", "onnx-fp32"}
    for name, p in out["pipelines"].items():
        for stage in ("load", "preprocess", "encoder", "decoder", "postprocess", "file_to_mask"):
            assert p[stage]["median"] > 0, (name, stage)
        assert p["reprompt"]["n"] == 2  # two re-prompt boxes per photo
        assert 0 < p["cold_start_s"] < 120 and 50 < p["peak_rss_mb"] < 8000
    ort = out["pipelines"]["onnx-fp32"]
    # ONNX Runtime fp32 reproduces the PyTorch mask on the same photo and box
    assert ort["mask_dice_vs_fp32"]["min"] >= 0.99
    assert ort["size_mb"] > 30
    # speedup is a ratio of medians measured in this run (no threshold: timings are benchmarks)
    assert out["speedup"]["onnx-fp32"] > 0
    assert 70 < out["encoder_gflop"] < 80
    assert ort["encoder_gflops_achieved"] > 0
    assert out["matmul_peak_gflops"]["numpy_fp32_1024"] > 0
    assert out["machine"]["cpus_available"] >= 1 and "onnxruntime" in out["machine"]
    from skinscreen.engine.cpu import cpu_info

    assert out["cpu"] == cpu_info()  # the CPU class and flags every figure belongs to


def test_bench_rejects_unknown_variant_and_bad_folder(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "skinscreen", "bench", "--variants", "coreml-fp16", "--no-pytorch"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 1 and "cannot time" in r.stderr
    empty = tmp_path / "none"
    empty.mkdir()
    r = subprocess.run(
        [sys.executable, "-m", "skinscreen", "bench", "--images", str(empty), "--no-pytorch"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 1 and "no .jpg/.png photos" in r.stderr


def test_bench_never_imports_torch_in_its_own_process():
    code = (
        "import sys, skinscreen.bench.runner, skinscreen.cli.bench, skinscreen.bench.coldstart;"
        "print('torch' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "False", r.stderr
