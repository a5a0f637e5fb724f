"""INT8 recipes on other instruction sets: build, reference, measure (e.g. under qemu-user).

    # here (any CPU, with torch): quantize each recipe and compute the fp32 PyTorch gate masks
    python scripts/experiments/int8_isa.py build OUT [N_PHOTOS]
    # on the CPU class to check, e.g. AVX2 only, emulated (speed means nothing there):
    qemu-x86_64 -cpu Haswell .venv/bin/python scripts/experiments/int8_isa.py measure OUT [LIMIT]
    python scripts/experiments/int8_isa.py measure OUT        # the same, natively

``measure`` needs only onnxruntime and numpy (no torch): it runs each recipe's encoder and
decoder (and the fp32 re-prompt pair) in onnxruntime on the pickled gate cases with
:func:`skinscreen.export.gate.measure_onnx` and appends one JSON line per recipe to
``OUT/results.jsonl`` with the CPU features the process sees (numpy's cpuid view, which is what
qemu emulates; /proc/cpuinfo under qemu-user is the host's).
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import time
from pathlib import Path

RECIPES = tuple(
    os.environ.get("INT8_RECIPES", "dynamic-s8,dynamic-7bit,dynamic").split(",")
)  # INT8_RECIPES=dynamic,dynamic-s8 to measure fewer


def build(out: Path, n: int) -> None:
    from skinscreen.engine.bundle import open_bundle
    from skinscreen.export.gate import gate_cases
    from skinscreen.export.variants import (
        gate_reference,
        quantize_decoder_int8,
        quantize_encoder_int8,
    )
    from skinscreen.spec import get_spec

    b = open_bundle("litemedsam", variant="onnx-fp32")
    spec = get_spec("litemedsam")
    files = {k: b.root / v["path"] for k, v in b.manifest["variants"]["onnx-fp32"]["files"].items()}
    out.mkdir(parents=True, exist_ok=True)
    for r in RECIPES:
        d = out / r
        d.mkdir(exist_ok=True)
        rec = {
            "encoder": quantize_encoder_int8(spec, files["encoder"], d / "encoder.onnx", r, []),
            "decoder": quantize_decoder_int8(files["decoder"], d / "decoder.onnx", r),
        }
        (d / "quantization.json").write_text(json.dumps(rec, indent=1))
    from skinscreen.export import gate

    shared = Path(__file__).resolve().parents[3] / "shared" / "data"
    if not shared.is_dir() and Path("/work/shared/data").is_dir():  # a worktree of the dev box
        gate.SHARED_DATA = Path("/work/shared/data")
    cases = gate_cases(n_dev=max(0, n - 5))[:n]
    _, ref = gate_reference(spec, None, [c.image for c in cases])
    reprompt = {k: str(files[k]) for k in ("prelude", "prompt_decoder")}
    with open(out / "reference.pkl", "wb") as f:
        pickle.dump({"reference": ref, "reprompt": reprompt}, f)
    print(f"built {RECIPES} and the reference on {len(ref.cases)} photos in {out}")


def measure(out: Path, limit: int | None = None) -> None:
    from numpy._core._multiarray_umath import __cpu_features__

    from skinscreen.export.gate import gate_verdict, measure_onnx

    with open(out / "reference.pkl", "rb") as f:
        saved = pickle.load(f)
    ref, reprompt = saved["reference"], {k: Path(v) for k, v in saved["reprompt"].items()}
    if limit:
        ref.cases = ref.cases[:limit]
    feats = sorted(k for k, v in __cpu_features__.items() if v)
    for r in RECIPES:
        t0 = time.time()
        acc = measure_onnx(ref, out / r / "encoder.onnx", out / r / "decoder.onnx", reprompt)
        passed, why = gate_verdict(acc)
        line = {
            "recipe": r,
            "cpu_features": feats,
            "avx512": any(k.startswith("AVX512") for k in feats),
            "n_images": acc["n_images"],
            "mask_dice_vs_fp32_mean": acc["mask_dice_vs_fp32_mean"],
            "mask_dice_vs_fp32_min": acc["mask_dice_vs_fp32_min"],
            "reprompt_mean": acc["reprompt"]["mask_dice_vs_fp32_mean"],
            "reprompt_min": acc["reprompt"]["mask_dice_vs_fp32_min"],
            "embedding_max_abs_diff": acc["embedding_max_abs_diff"],
            "per_image": acc["mask_dice_vs_fp32"],
            "gate_passed": passed,
            "gate_reason": why,
            "seconds": round(time.time() - t0, 1),
        }
        with open(out / "results.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    cmd, out = sys.argv[1], Path(sys.argv[2])
    if cmd == "build":
        build(out, int(sys.argv[3]) if len(sys.argv) > 3 else 6)
    elif cmd == "measure":
        measure(out, int(sys.argv[3]) if len(sys.argv) > 3 else None)
    else:
        raise SystemExit(__doc__)
