"""The benchmark: every pipeline on the same photos in one run, interleaved photo by photo.

Per pipeline (PyTorch reference, then each runnable bundle variant: ``onnx-*``, ``ort-*`` and,
where OpenVINO and a bf16 CPU are present, ``openvino-bf16``):
stage times (load, preprocess, encoder, the decoder prelude where the bundle has the re-prompt
pair, decoder, postprocess), whole file -> mask, re-prompt (decoder + post-processing on the
cached embedding: the prompt decoder on the cached prelude where there is one), cold start (a new process to its first mask)
and that process's peak RSS, bundle size, and mask Dice vs the fp32 PyTorch masks. Interleaving
the pipelines photo by photo keeps the comparison fair on a machine whose load changes.

Never imports torch: the PyTorch pipeline runs in a child process
(:mod:`skinscreen.export.torch_bench`).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from skinscreen.engine.bundle import Bundle, open_bundle
from skinscreen.engine.cpu import cpu_info, cpu_line
from skinscreen.errors import SkinscreenError
from skinscreen.evaluate.metrics import dice
from skinscreen.io.image import load_image, load_mask
from skinscreen.preprocess.transforms import box_from_mask, expand_box

STAGES = (
    "load",
    "preprocess",
    "encoder",
    "prelude",
    "decoder",
    "box_check",
    "postprocess",
    "file_to_mask",
    "reprompt",
)
#: the predictor's ``box_check`` as the cold-start child's argument (skinscreen.bench.coldstart)
BOX_CHECK_ARG = {None: "auto", True: "on", False: "off"}
#: idle pause before each timed pipeline run: the pipelines are interleaved photo by photo, and
#: the previous runtime's worker threads (ONNX Runtime's spinning pool, PyTorch's OpenMP team in
#: the reference child process) must go idle first, or they steal cycles from the next one
SETTLE_S = 0.25
RUNNABLE_FORMATS = ("onnx", "ort")  # + "openvino" where it can run (runnable_formats)
TARGETS = {
    "speedup_vs_pytorch_min": 4.0,
    "reprompt_ms_max": 15.0,
    "cold_start_s_max": 1.5,
    "peak_rss_mb_max": 500.0,
    "smallest_gated_bundle_mb_max": 12.0,
}

Say = Callable[[str], None]


# -- machine -------------------------------------------------------------------------------------


def machine_description() -> dict:
    """CPU model, cores, SIMD flags that matter, memory, OS, library versions, load average."""
    info: dict = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus_available": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
    }
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        flags = next(
            (ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []
        )
        info["simd"] = [
            f
            for f in (
                "avx2",
                "fma",
                "avx512f",
                "avx512_vnni",
                "avx512_bf16",
                "avx_vnni",
                "amx_int8",
            )
            if f in flags
        ]
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["memory_gb"] = round(int(mem) / 1e6, 1)
    except (OSError, StopIteration, IndexError, ValueError):
        pass
    import onnxruntime

    info["onnxruntime"] = onnxruntime.__version__
    from skinscreen.engine import openvino as ovmod

    if ovmod.openvino_available():
        info["openvino"] = ovmod.openvino_version()
        info["openvino_bf16"] = ovmod.cpu_supports_bf16()
    info["numpy"] = np.__version__
    if hasattr(os, "getloadavg"):
        info["load_average_1m_start"] = round(os.getloadavg()[0], 2)
    return info


def numpy_matmul_peak(n: int = 1024, seconds: float = 1.0) -> float:
    """Best fp32 GFLOP/s of ``n x n @ n x n`` with numpy's BLAS (its own thread count)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    a @ b
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return round(best, 1)


def ort_matmul_peak(threads: int, n: int = 1024, seconds: float = 1.0) -> float | None:
    """Best fp32 GFLOP/s of one ``n x n`` MatMul in onnxruntime (needs the ``onnx`` package to
    build the graph; None without it)."""
    try:
        from onnx import TensorProto, helper
    except ImportError:
        return None
    import onnxruntime as ort

    g = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "mm",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    s = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {"a": rng.random((n, n), dtype=np.float32), "b": rng.random((n, n), dtype=np.float32)}
    s.run(None, feeds)
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        s.run(None, feeds)
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return round(best, 1)


def runnable_formats() -> tuple[str, ...]:
    """Variant formats this machine can time: ONNX/ORT always; ``openvino`` when the package is
    installed and the CPU has native bf16 (the only OpenVINO variant is ``openvino-bf16``)."""
    from skinscreen.engine import openvino as ovmod

    if ovmod.openvino_available() and ovmod.cpu_supports_bf16():
        return (*RUNNABLE_FORMATS, "openvino")
    return RUNNABLE_FORMATS


def default_choice(manifest: dict):
    """The engine and variant ``LesionPredictor()`` picks here (``engine="auto"``): the pipeline
    whose speedup is reported as ``speedup_vs_pytorch``."""
    from skinscreen.engine import openvino as ovmod
    from skinscreen.engine.select import choose_engine

    return choose_engine(
        manifest,
        engine="auto",
        openvino_available=ovmod.openvino_available(),
        cpu_bf16=ovmod.cpu_supports_bf16,
        isa=cpu_info()["isa"],
    )


# -- photos ----------------------------------------------------------------------------------------


def bench_photos(images: Path | None, limit: int) -> list[tuple[Path, np.ndarray | None]]:
    """(photo, expert mask or None) pairs: ``images`` (masks in ``../masks/<stem>.png``), else the
    shipped samples. At most ``limit`` photos, evenly spaced."""
    if images is None:
        from skinscreen.export.bundle import examples_dir  # no torch at import time

        images = examples_dir() / "images"
    if not Path(images).is_dir():
        raise SkinscreenError(f"--images {images} is not a folder of photos")
    photos = sorted(
        p for p in Path(images).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    )
    if not photos:
        raise SkinscreenError(f"no .jpg/.png photos in {images}")
    photos = photos[:: max(1, len(photos) // limit)][:limit]
    out = []
    for p in photos:
        m = p.parent.parent / "masks" / f"{p.stem}.png"
        out.append((p, load_mask(m) if m.is_file() else None))
    return out


def _boxes(photo: Path, truth: np.ndarray | None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Prompt box (tight expert box, else central 80%) and two re-prompt boxes (5% / 10% margin)."""
    if truth is not None and (b := box_from_mask(truth)) is not None:
        shape = truth.shape
    else:
        h, w = load_image(photo).shape[:2]
        b, shape = np.array([0.1 * w, 0.1 * h, 0.9 * w, 0.9 * h]), (h, w)
    return b, [expand_box(b, m, shape) for m in (0.05, 0.10)]


# -- pipelines -------------------------------------------------------------------------------------


class _TorchChild:
    """The PyTorch pipeline in a child process (JSON lines)."""

    def __init__(self, threads: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "skinscreen.export.torch_bench", "--threads", str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line:
            raise SkinscreenError("the PyTorch reference process failed to start (see stderr)")
        self.startup_s = json.loads(line)["startup_s"]

    def run(self, photo: Path, box, reprompt, mask_out: Path) -> tuple[dict, np.ndarray]:
        req = {
            "image": str(photo),
            "box": [float(v) for v in box],
            "reprompt_boxes": [[float(v) for v in b] for b in reprompt],
            "mask_out": str(mask_out),
        }
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        ms = json.loads(self.proc.stdout.readline())
        return ms, np.load(mask_out)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def _run_variant(predictor, rp, photo: Path, box, reprompt) -> tuple[dict, np.ndarray]:
    """File -> mask with ``predictor`` (plain decoder: what a one-mask call runs), then the
    re-prompt boxes with ``rp`` (``reprompt=True``: the prelude once, timed as ``prelude``, then
    the prompt decoder per box) on the same embedding."""
    t0 = time.perf_counter()
    predictor.set_image(photo)
    seg = predictor.predict(box=box, box_margin=0.0)  # the PyTorch child prompts the raw box
    total = (time.perf_counter() - t0) * 1e3
    ms = {k: seg.timings_ms[k] for k in ("load", "preprocess", "encoder", "decoder", "postprocess")}
    if "box_check" in seg.timings_ms:  # the second decoder on a drawn box (on by default)
        ms["box_check"] = seg.timings_ms["box_check"]
    ms["file_to_mask"] = total
    enc = predictor.encoding
    if rp is not None and getattr(rp.engine, "has_reprompt", False):
        p0 = time.perf_counter()
        prelude = rp.engine.prelude(enc.embedding)
        ms["prelude"] = (time.perf_counter() - p0) * 1e3
        rp.set_encoding(replace(enc, prelude=prelude))
    else:
        rp = predictor
    rep = []
    for b in reprompt:
        r0 = time.perf_counter()
        rp.predict(box=b, box_margin=0.0)
        rep.append((time.perf_counter() - r0) * 1e3)
    ms["reprompt"] = rep
    return ms, seg.mask


def _child_cold_start(cmd: list[str]) -> dict:
    """Run ``cmd`` (prints one JSON line at its first mask); wall time from process creation to
    that line, and the child's peak RSS as the child reads it (``VmHWM``)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    wall = time.perf_counter() - t0
    proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not line:
        raise SkinscreenError(f"cold-start child failed (exit {proc.returncode}): {' '.join(cmd)}")
    out = json.loads(line)
    out["cold_start_s"] = wall
    if out.get("peak_rss_mb") is None:  # the child could not read its own high-water mark
        out["peak_rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    return out


def _summary(values: list[float]) -> dict:
    a = np.asarray(values, dtype=np.float64)
    return {
        "median": round(float(np.median(a)), 2),
        "p90": round(float(np.percentile(a, 90)), 2),
        "n": int(a.size),
    }


def run_bench(
    images: Path | None = None,
    *,
    bundle_dir: Path | None = None,
    model: str = "litemedsam",
    limit: int = 8,
    threads: int = 2,
    variants: list[str] | None = None,
    pytorch: bool | None = None,
    cold_start: bool = True,
    levers: bool = False,
    say: Say | None = None,
    box_check: bool | None = None,
) -> dict:
    """Benchmark every pipeline on the same photos; returns the JSON-ready result.

    Args:
        images: folder of photos (expert masks in ``../masks``); default the shipped samples.
        bundle_dir: bundle to measure (default: the model's cached bundle).
        limit: at most this many photos (evenly spaced).
        threads: intra-op threads for every engine (2 on the shared dev machine).
        variants: bundle variants to time (default: every ``onnx-*``/``ort-*`` variant).
        pytorch: time the PyTorch reference (default: when torch is installed).
        cold_start: also measure cold start and peak RSS in fresh processes.
        levers: also measure ONNX Runtime settings on the default variant's encoder
            (:mod:`skinscreen.bench.levers`).
        box_check: the predictors' ``box_check`` (None: the default, on where the model has one
            and its bundle is built); the file -> mask time includes it, ``box_check`` is its
            own stage; the re-prompt predictors never run it (their default).
    """
    import importlib.util

    from skinscreen.predictor import LesionPredictor

    say = say or (lambda m: None)
    bundle = open_bundle(model, root=bundle_dir)
    root, manifest = bundle.root, bundle.manifest
    formats = runnable_formats()
    runnable = [k for k, v in manifest["variants"].items() if v.get("format", "onnx") in formats]
    keys = variants or runnable
    unknown = [k for k in keys if k not in runnable]
    if unknown:
        raise SkinscreenError(
            f"cannot time variants {unknown} here; runnable: {', '.join(runnable)}"
        )
    if pytorch is None:
        pytorch = importlib.util.find_spec("torch") is not None
    auto = default_choice(manifest)
    photos = bench_photos(images, limit)
    result: dict = {
        "cpu": dict(cpu_info()),  # the CPU class every figure here belongs to
        "machine": machine_description(),
        "threads": threads,
        "box_check_requested": BOX_CHECK_ARG[box_check],
        "bundle": str(root),
        "model": manifest["model"],
        "default_variant": auto.variant,  # what LesionPredictor() runs here (engine="auto")
        "default_engine": {
            "engine": auto.engine,
            "precision": auto.precision,
            "reason": auto.reason,
        },
        "manifest_default_variant": manifest["default_variant"],
        "images": {
            "dir": str(photos[0][0].parent),
            "n": len(photos),
            "names": [p.name for p, _ in photos],
        },
        "pipelines": {},
    }
    say("matrix-multiply peaks (numpy, onnxruntime)")
    result["matmul_peak_gflops"] = {
        "numpy_fp32_1024": numpy_matmul_peak(),
        "onnxruntime_fp32_1024": ort_matmul_peak(threads),
    }
    say(f"loading {len(keys)} variant(s)" + (" and the PyTorch reference" if pytorch else ""))
    predictors = {
        k: LesionPredictor(
            bundle=open_bundle(model, root=root, variant=k), threads=threads, box_check=box_check
        )
        for k in keys
    }
    result["box_check"] = {
        k: (p.box_checker.check_model if p.box_checker is not None else None)
        for k, p in predictors.items()
    }
    rp_predictors = {  # with the re-prompt pair, for the re-prompt figure
        k: LesionPredictor(
            bundle=open_bundle(model, root=root, variant=k), threads=threads, reprompt=True
        )
        for k in keys
    }
    child = _TorchChild(threads) if pytorch else None
    names = (["pytorch"] if child else []) + keys
    times: dict[str, dict[str, list[float]]] = {n: {s: [] for s in STAGES} for n in names}
    dices: dict[str, list[float]] = {n: [] for n in names}
    expert: dict[str, list[float]] = {n: [] for n in names}
    tmp = Path(tempfile.mkdtemp(prefix="skinscreen-bench-"))
    try:
        # warm-up (untimed): first call allocations, lazy initialisation
        p0, t0 = photos[0]
        b0, _ = _boxes(p0, t0)
        for k in keys:
            _run_variant(predictors[k], rp_predictors[k], p0, b0, [])
        if child:
            child.run(p0, b0, [], tmp / "warm.npy")
        for i, (photo, truth) in enumerate(photos):
            say(f"photo {i + 1}/{len(photos)}: {photo.name}")
            box, reprompt = _boxes(photo, truth)
            masks = {}
            if child:
                time.sleep(SETTLE_S)
                ms, masks["pytorch"] = child.run(photo, box, reprompt, tmp / f"{i}.npy")
                _add(times["pytorch"], ms)
            for k in keys:
                time.sleep(SETTLE_S)
                ms, masks[k] = _run_variant(predictors[k], rp_predictors[k], photo, box, reprompt)
                _add(times[k], ms)
            ref = masks["pytorch"] if child else masks.get("onnx-fp32", masks[keys[0]])
            for n in names:
                dices[n].append(dice(masks[n], ref))
                if truth is not None:
                    expert[n].append(dice(masks[n], truth))
    finally:
        if child:
            child.close()
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()

    enc_gflop = manifest.get("compute", {}).get("encoder", {}).get("total_gflop")
    if enc_gflop is None and importlib.util.find_spec("onnx") is not None:
        from skinscreen.export.flops import count_flops  # onnx only, no torch

        fp32 = manifest["variants"].get("onnx-fp32")
        if fp32 is not None:
            enc_gflop = count_flops(root / fp32["files"]["encoder"]["path"])["total_gflop"]
    result["encoder_gflop"] = enc_gflop
    result["dice_reference"] = (
        "pytorch fp32" if child else ("onnx-fp32" if "onnx-fp32" in keys else keys[0])
    )
    for n in names:
        rec = {s: _summary(v) for s, v in times[n].items() if v}
        rec["mask_dice_vs_fp32"] = {
            "mean": round(float(np.mean(dices[n])), 4),
            "min": round(float(np.min(dices[n])), 4),
        }
        if expert[n]:
            rec["dice_vs_expert_mean"] = round(float(np.mean(expert[n])), 4)
        if n == "pytorch":
            rec["size_mb"] = None
            rec["format"], rec["precision"] = "pytorch", "fp32"
        else:
            v = manifest["variants"][n]
            # what an app must ship; the optional re-prompt pair separately
            rec["size_mb"] = round(bundle.size_bytes(n, optional=False) / 1e6, 2)
            rec["size_with_optional_mb"] = round(bundle.size_bytes(n) / 1e6, 2)
            rec["format"], rec["precision"] = v.get("format"), v.get("precision")
            rec["engine"] = predictors[n].engine_choice.engine
            rec["gate"] = v.get("accuracy", {}).get("gate")
        if enc_gflop:
            rec["encoder_gflops_achieved"] = round(enc_gflop / (rec["encoder"]["median"] / 1e3), 1)
        result["pipelines"][n] = rec

    if cold_start:
        photo, truth = photos[0]
        box, _ = _boxes(photo, truth)
        box_arg = ",".join(f"{v:.2f}" for v in box)
        for k in keys:
            say(f"cold start: {k}")
            c = _child_cold_start(
                [
                    sys.executable,
                    "-m",
                    "skinscreen.bench.coldstart",
                    str(root),
                    k,
                    str(photo),
                    box_arg,
                    str(threads),
                    BOX_CHECK_ARG[box_check],
                ]
            )
            result["pipelines"][k].update(
                cold_start_s=round(c["cold_start_s"], 3),
                peak_rss_mb=round(c["peak_rss_mb"], 1),
                sessions_s=round(c["sessions_s"], 3),
            )
        if child:
            say("cold start: pytorch")
            c = _child_cold_start(
                [
                    sys.executable,
                    "-m",
                    "skinscreen.export.torch_bench",
                    "--threads",
                    str(threads),
                    "--once",
                    str(photo),
                    "--box",
                    box_arg,
                ]
            )
            result["pipelines"]["pytorch"].update(
                cold_start_s=round(c["cold_start_s"], 3), peak_rss_mb=round(c["peak_rss_mb"], 1)
            )

    if levers:
        from skinscreen.bench.levers import measure_levers

        d = result["manifest_default_variant"]  # ONNX Runtime settings: the ORT default
        say(f"levers: ONNX Runtime settings on the {d} encoder")
        ort_key = "ort-" + manifest["variants"][d].get("precision", "fp32")
        ort_enc = None
        if ort_key in manifest["variants"]:
            ort_enc = root / manifest["variants"][ort_key]["files"]["encoder"]["path"]
        enc = root / manifest["variants"][d]["files"]["encoder"]["path"]
        result["levers"] = measure_levers(enc, ort_enc, threads)
    result["speedup"] = _speedups(result)
    result["targets"] = _targets(result)
    sg = smallest_gated_bundle(manifest, bundle)
    if sg is not None:
        result["smallest_gated_bundle"] = {"variant": sg[0], "size_mb": sg[1]}
        result["targets"]["smallest_gated_bundle_mb"] = {
            "value": sg[1],
            "variant": sg[0],
            "target": f"< {TARGETS['smallest_gated_bundle_mb_max']}",
            "met": sg[1] < TARGETS["smallest_gated_bundle_mb_max"],
        }
    if hasattr(os, "getloadavg"):
        result["machine"]["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    return result


def _add(acc: dict[str, list[float]], ms: dict) -> None:
    for s in STAGES:
        v = ms.get(s)
        if isinstance(v, list):
            acc[s].extend(v)
        elif v is not None:
            acc[s].append(float(v))


def _speedups(r: dict) -> dict:
    p = r["pipelines"]
    out: dict = {}
    if "pytorch" not in p:
        return out
    torch_ms = p["pytorch"]["file_to_mask"]["median"]
    for k, v in p.items():
        if k != "pytorch":
            out[k] = round(torch_ms / v["file_to_mask"]["median"], 2)
    d = r["default_variant"]
    if d in out:
        r["speedup_vs_pytorch"] = out[d]
    return out


def _targets(r: dict) -> dict:
    p = r["pipelines"]
    d = p.get(r["default_variant"])
    t: dict = {}
    if d is None:
        return t
    if "speedup_vs_pytorch" in r:
        t["speedup_vs_pytorch"] = {
            "value": r["speedup_vs_pytorch"],
            "target": f">= {TARGETS['speedup_vs_pytorch_min']}",
            "met": r["speedup_vs_pytorch"] >= TARGETS["speedup_vs_pytorch_min"],
        }
    rp = d["reprompt"]["median"]
    t["reprompt_ms"] = {
        "value": rp,
        "target": f"< {TARGETS['reprompt_ms_max']}",
        "met": rp < TARGETS["reprompt_ms_max"],
    }
    if "cold_start_s" in d:
        t["cold_start_s"] = {
            "value": d["cold_start_s"],
            "target": f"< {TARGETS['cold_start_s_max']}",
            "met": d["cold_start_s"] < TARGETS["cold_start_s_max"],
        }
        t["peak_rss_mb"] = {
            "value": d["peak_rss_mb"],
            "target": f"< {TARGETS['peak_rss_mb_max']}",
            "met": d["peak_rss_mb"] < TARGETS["peak_rss_mb_max"],
        }
    return t


def smallest_gated_bundle(manifest: dict, bundle: Bundle) -> tuple[str, float] | None:
    """(variant, MB) of the smallest variant whose gate passed (any format), counting the files
    an app must ship (not the optional re-prompt pair)."""
    best = None
    for k, v in manifest["variants"].items():
        if not v.get("accuracy", {}).get("gate", {"passed": True}).get("passed", False):
            continue
        mb = bundle.size_bytes(k, optional=False) / 1e6
        if best is None or mb < best[1]:
            best = (k, round(mb, 2))
    return best


def markdown_table(r: dict) -> str:
    """The results as a Markdown table (medians; ms unless stated), under a line naming the CPU
    class and flags they were measured on."""
    head = (
        (f"{cpu_line(r['cpu'])}\n\n" if "cpu" in r else "")
        + "| pipeline | size MB | load | pre | encoder | prelude | decoder | box check | post | "
        "file->mask | re-prompt | cold start s | peak RSS MB | encoder GFLOP/s | "
        "Dice vs fp32 mean / min | Dice vs expert | speedup |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for n, p in r["pipelines"].items():

        def med(s, p=p):
            return (
                f"{p[s]['median']:.0f}"
                if s in p and p[s]["median"] >= 10
                else (f"{p[s]['median']:.1f}" if s in p else "")
            )

        name = f"**{n}** (default)" if n == r.get("default_variant") else n
        rows.append(
            f"| {name} | {p['size_mb'] if p.get('size_mb') is not None else ''} | {med('load')} | {med('preprocess')} | "
            f"{med('encoder')} | {med('prelude')} | {med('decoder')} | {med('box_check')} | {med('postprocess')} | {med('file_to_mask')} | {med('reprompt')} | "
            f"{p.get('cold_start_s', '')} | {p.get('peak_rss_mb', '')} | {p.get('encoder_gflops_achieved', '')} | "
            f"{p['mask_dice_vs_fp32']['mean']:.4f} / {p['mask_dice_vs_fp32']['min']:.4f} | {p.get('dice_vs_expert_mean', '')} | "
            f"{r.get('speedup', {}).get(n, '1.00' if n == 'pytorch' else '')} |"
        )
    return head + "\n".join(rows) + "\n"
