"""Accuracy gate for bundle variants: every variant is checked on real photos before it is written.

Reference: the fp32 PyTorch model (:class:`skinscreen.export.reference.TorchReference`), with the
runtime's own pre- and post-processing. For each gate photo and its prompt box the reference mask
is computed once; each ONNX / ORT variant then runs end to end in onnxruntime (its own encoder
*and* decoder; the ``openvino-bf16`` variant in OpenVINO, :func:`measure_engine`) and its mask is
compared with the reference (Dice) and with the expert mask.

Rule: a variant passes when the mean mask Dice vs fp32 is >= :data:`MEAN_DICE_MIN` (0.99) and the
worst image is >= :data:`WORST_DICE_MIN` (0.95). A variant that carries the re-prompt pair
(prelude + prompt decoder, which the Python runtime runs instead of the decoder) is measured both
ways; the ``reprompt`` sub-record must pass the same rule. CoreML variants cannot run on Linux (prediction
needs macOS): :func:`check_coreml` checks what Linux allows (the package loads, input/output names
and shapes match the manifest, the stored weights round-trip to the PyTorch/ONNX weights) and the
manifest says that the accuracy was not measured.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from skinscreen.evaluate.metrics import dice
from skinscreen.io.image import load_image, load_mask
from skinscreen.postprocess.mask import clean_mask
from skinscreen.preprocess.transforms import (
    InputTransform,
    box_from_mask,
    crop_and_resize_logits,
    preprocess,
)
from skinscreen.spec import ModelSpec

MEAN_DICE_MIN = 0.99
WORST_DICE_MIN = 0.95
DEV_GATE_PHOTOS = 12  # extra lesions-dev photos used when the shared data set is present

_REPO = Path(__file__).resolve().parents[3]
SHARED_DATA = _REPO.parent / "shared" / "data"


@dataclass(frozen=True)
class GateCase:
    """One gate photo: ``image`` path and its expert ``mask`` path (None: no expert mask)."""

    image: Path
    mask: Path | None


def gate_cases(images: list[Path] | None = None, n_dev: int = DEV_GATE_PHOTOS) -> list[GateCase]:
    """The photos every variant is checked on.

    ``images`` given: those photos (expert masks looked up as ``../masks/<stem>.png``). Otherwise
    the shipped samples (4 ISIC 2017 dermoscopy photos with expert masks + 1 phone photo) plus
    ``n_dev`` evenly spaced photos of ``../shared/data/lesions-dev`` when that set is present.
    Calibration (see :mod:`skinscreen.export.variants`) never uses these photos.
    """
    if images is None:
        from skinscreen.export.bundle import examples_dir

        ex = examples_dir()
        images = sorted((ex / "images").glob("*.jpg")) + sorted((ex / "phone").glob("*.jpg"))
        dev = SHARED_DATA / "lesions-dev" / "images"
        if n_dev > 0 and dev.is_dir():
            have = {p.name for p in images}
            pool = [p for p in sorted(dev.glob("*.jpg")) if p.name not in have]
            if pool:
                step = max(1, len(pool) // n_dev)
                images += pool[::step][:n_dev]
    cases = []
    for p in images:
        p = Path(p)
        m = p.parent.parent / "masks" / f"{p.stem}.png"
        cases.append(GateCase(p, m if m.is_file() else None))
    if not cases:
        from skinscreen.errors import BundleError

        raise BundleError(
            "no gate photos: examples/images is missing (installed without the source tree?); "
            "pass gate images explicitly"
        )
    return cases


def prompt_box(rgb: np.ndarray, truth: np.ndarray | None) -> np.ndarray:
    """Gate prompt, XYXY original pixels: tight box of the expert mask, else the central 80%."""
    if truth is not None:
        box = box_from_mask(truth)
        if box is not None:
            return box
    h, w = rgb.shape[:2]
    return np.array([0.1 * w, 0.1 * h, 0.9 * w, 0.9 * h])


@dataclass
class _Prepared:
    name: str
    x: np.ndarray  # (1, 3, S, S) float32 model input
    transform: InputTransform
    box_model: np.ndarray  # (1, 4) float32 XYXY model-input pixels
    truth: np.ndarray | None  # (H, W) bool expert mask
    ref_mask: np.ndarray  # (H, W) bool fp32 PyTorch mask
    ref_embedding: np.ndarray  # (1, C, h, w) float32


@dataclass
class GateReference:
    """fp32 PyTorch masks on the gate photos, computed once and shared by every variant."""

    spec: ModelSpec
    cases: list[_Prepared] = field(default_factory=list)

    @classmethod
    def build(cls, spec: ModelSpec, net, cases: list[GateCase]) -> GateReference:
        """Run the PyTorch model ``net`` (a loaded SamModel) on every gate case."""
        from skinscreen.export.reference import TorchReference

        ref = TorchReference(spec, model=net, threads=2)
        out = cls(spec)
        for case in cases:
            rgb = load_image(case.image)
            truth = load_mask(case.mask) if case.mask is not None else None
            if truth is not None and truth.shape != rgb.shape[:2]:
                truth = None  # mis-sized expert mask: keep the photo for the vs-fp32 check only
            box = prompt_box(rgb, truth)
            x, t = preprocess(spec, rgb)
            box_model = t.apply_boxes(box).astype(np.float32).reshape(1, 4)
            emb = ref.set_image(rgb)
            logits, _ = ref.predict_logits(box_model[0])
            mask = _mask(spec, logits, t)
            out.cases.append(
                _Prepared(case.image.name, x, t, box_model, truth, mask, np.asarray(emb))
            )
        return out

    @property
    def images(self) -> list[str]:
        return [c.name for c in self.cases]


def _mask(spec: ModelSpec, logits: np.ndarray, t: InputTransform) -> np.ndarray:
    full = crop_and_resize_logits(np.asarray(logits, dtype=np.float32), t, spec.low_res_size)
    return clean_mask(full > spec.mask_threshold)


def _session(path: Path, threads: int = 2):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _fast_session_pair(reprompt: dict[str, Path] | None):
    if reprompt is None:
        return None
    return _session(reprompt["prelude"]), _session(reprompt["prompt_decoder"])


def _accuracy_record(reference: GateReference, masks: list[np.ndarray]) -> dict:
    """Dice of each gate photo's mask vs the fp32 reference (and the expert mask)."""
    vs_ref = [dice(m, c.ref_mask) for m, c in zip(masks, reference.cases, strict=True)]
    vs_truth = [
        dice(m, c.truth) for m, c in zip(masks, reference.cases, strict=True) if c.truth is not None
    ]
    rec = {
        "reference": "PyTorch fp32 (same pre/post-processing), tight expert box prompts",
        "mask_dice_vs_fp32_mean": round(float(np.mean(vs_ref)), 6),
        "mask_dice_vs_fp32_min": round(float(np.min(vs_ref)), 6),
        "mask_dice_vs_fp32": [round(v, 6) for v in vs_ref],
    }
    if vs_truth:
        rec["dice_vs_expert_mean"] = round(float(np.mean(vs_truth)), 6)
        rec["n_expert_masks"] = len(vs_truth)
    return rec


def _reprompt_record(reference: GateReference, fast: list[np.ndarray], plain: list) -> dict:
    rec = _accuracy_record(reference, fast)
    rec["decoder"] = "prelude + prompt_decoder (the Python runtime's re-prompt path)"
    rec["mask_dice_vs_decoder_min"] = round(
        float(min(dice(a, b) for a, b in zip(fast, plain, strict=True))), 6
    )
    return rec


def measure_onnx(
    reference: GateReference,
    encoder: Path,
    decoder: Path,
    reprompt: dict[str, Path] | None = None,
) -> dict:
    """Run an ONNX/ORT encoder+decoder pair on the gate photos; return its accuracy record.

    Keys: ``mask_dice_vs_fp32_mean``, ``mask_dice_vs_fp32_min``, ``mask_dice_vs_fp32`` (per
    image), ``dice_vs_expert_mean`` (photos with an expert mask), ``embedding_max_abs_diff``,
    ``n_images``, ``images``, ``reference``, ``encoder_ms_median`` (indicative only). With
    ``reprompt`` (``{"prelude": path, "prompt_decoder": path}``) also ``reprompt``: the same
    Dice figures for the re-prompt pair run on this encoder's embeddings.
    """
    enc, dec = _session(encoder), _session(decoder)
    fast = _fast_session_pair(reprompt)
    enc_in = enc.get_inputs()[0]
    enc_dtype = np.float16 if "float16" in enc_in.type else np.float32
    dec_in = [i.name for i in dec.get_inputs()]
    emb_dtype = np.float16 if "float16" in dec.get_inputs()[0].type else np.float32
    masks, fast_masks, emb_diff, times = [], [], 0.0, []
    for c in reference.cases:
        t0 = time.perf_counter()
        emb = enc.run(None, {enc_in.name: c.x.astype(enc_dtype)})[0]
        times.append((time.perf_counter() - t0) * 1e3)
        logits = dec.run(None, {dec_in[0]: emb.astype(emb_dtype), dec_in[1]: c.box_model})[0]
        masks.append(_mask(reference.spec, logits[0, 0], c.transform))
        emb_diff = max(emb_diff, float(np.abs(emb.astype(np.float32) - c.ref_embedding).max()))
        if fast is not None:
            names = [o.name for o in fast[0].get_outputs()]
            emb32 = emb.astype(np.float32)
            feats = dict(zip(names, fast[0].run(None, {"image_embeddings": emb32}), strict=True))
            logits = fast[1].run(None, {**feats, "boxes": c.box_model})[0]
            fast_masks.append(_mask(reference.spec, logits[0, 0], c.transform))
    return _measured_record(reference, masks, fast_masks, emb_diff, times)


def measure_engine(reference: GateReference, engine) -> dict:
    """Like :func:`measure_onnx` for any runtime engine (``encode(x)`` -> embedding,
    ``decode(embedding, box_model)`` -> (logits ``(L, L)``, IoU); e.g.
    :class:`skinscreen.engine.openvino.OpenVinoEngine`): the same photos, boxes, post-processing
    and record keys, so every engine passes the same gate. An engine with the re-prompt pair
    (``prelude(embedding)``) is also measured on it (``reprompt`` sub-record)."""
    masks, fast_masks, emb_diff, times = [], [], 0.0, []
    has_fast = getattr(engine, "has_reprompt", False)
    for c in reference.cases:
        t0 = time.perf_counter()
        emb = engine.encode(c.x)
        times.append((time.perf_counter() - t0) * 1e3)
        logits, _ = engine.decode(emb, c.box_model)
        masks.append(_mask(reference.spec, logits, c.transform))
        emb_diff = max(emb_diff, float(np.abs(emb.astype(np.float32) - c.ref_embedding).max()))
        if has_fast:
            logits, _ = engine.decode(emb, c.box_model, engine.prelude(emb))
            fast_masks.append(_mask(reference.spec, logits, c.transform))
    return _measured_record(reference, masks, fast_masks, emb_diff, times)


def _measured_record(
    reference: GateReference,
    masks: list[np.ndarray],
    fast_masks: list[np.ndarray],
    emb_diff: float,
    times: list[float],
) -> dict:
    """The gate record of one measured variant (shared by :func:`measure_onnx` and
    :func:`measure_engine`); a ``reprompt`` sub-record when the re-prompt pair was measured."""
    rec = _accuracy_record(reference, masks)
    rec.update(
        {
            "embedding_max_abs_diff": round(emb_diff, 6),
            "n_images": len(masks),
            "images": reference.images,
            "encoder_ms_median": round(float(np.median(times)), 1),
        }
    )
    if fast_masks:
        rec["reprompt"] = _reprompt_record(reference, fast_masks, masks)
    return rec


def gate_verdict(accuracy: dict) -> tuple[bool, str]:
    """(passed, reason) for an accuracy record from :func:`measure_onnx` (its ``reprompt``
    sub-record, when present, must pass the same rule)."""
    problems = []
    parts = [("", accuracy)]
    if "reprompt" in accuracy:
        parts.append(("re-prompt path: ", accuracy["reprompt"]))
    for label, rec in parts:
        mean, worst = rec["mask_dice_vs_fp32_mean"], rec["mask_dice_vs_fp32_min"]
        if mean < MEAN_DICE_MIN:
            problems.append(f"{label}mean mask Dice vs fp32 {mean:.4f} < {MEAN_DICE_MIN}")
        if worst < WORST_DICE_MIN:
            problems.append(f"{label}worst mask Dice vs fp32 {worst:.4f} < {WORST_DICE_MIN}")
    if problems:
        return False, "; ".join(problems)
    mean, worst = accuracy["mask_dice_vs_fp32_mean"], accuracy["mask_dice_vs_fp32_min"]
    reason = f"mean mask Dice vs fp32 {mean:.4f}, worst {worst:.4f}"
    if "reprompt" in accuracy:
        r = accuracy["reprompt"]
        reason += (
            f"; re-prompt path mean {r['mask_dice_vs_fp32_mean']:.4f}, "
            f"worst {r['mask_dice_vs_fp32_min']:.4f}"
        )
    return True, reason


def gate_record(accuracy: dict, *, forced: bool = False, isa_exact: bool = False) -> dict:
    """The ``gate`` sub-record stored with a variant's accuracy, with the CPU it ran on:
    ``isa`` (:func:`skinscreen.engine.cpu.cpu_class`), ``cpu_flags`` (read at export),
    ``cpu_model`` and ``isa_checked``: the classes the result holds on (this one; with
    ``isa_exact``, a recipe whose integer arithmetic is exact on every x86 kernel, every x86
    class; never arm64, which no gate here measured)."""
    from skinscreen.engine.cpu import cpu_info
    from skinscreen.engine.select import X86_CLASSES

    passed, reason = gate_verdict(accuracy)
    cpu = cpu_info()
    checked = [cpu["isa"]]
    if isa_exact and cpu["isa"] in X86_CLASSES:
        checked = list(X86_CLASSES)
    return {
        "mean_dice_min": MEAN_DICE_MIN,
        "worst_dice_min": WORST_DICE_MIN,
        "passed": passed,
        "forced": bool(forced and not passed),
        "reason": reason,
        "isa": cpu["isa"],
        "cpu_flags": cpu["flags"],
        "cpu_model": cpu["model"],
        "isa_checked": checked,
    }


# -- CoreML: what can be checked on Linux --------------------------------------------------------


def _coreml_io(spec_proto) -> tuple[list[dict], list[dict]]:
    from coremltools.proto import FeatureTypes_pb2 as ft

    names = {v: k for k, v in ft.ArrayFeatureType.ArrayDataType.items()}

    def one(f) -> dict:
        a = f.type.multiArrayType
        dtype = names.get(a.dataType, str(a.dataType)).lower()
        return {"name": f.name, "shape": [int(s) for s in a.shape], "dtype": dtype}

    d = spec_proto.description
    return [one(f) for f in d.input], [one(f) for f in d.output]


def _io_matches(got: list[dict], want: list[dict]) -> list[str]:
    problems = []
    if [g["name"] for g in got] != [w["name"] for w in want]:
        problems.append(f"names {[g['name'] for g in got]} != {[w['name'] for w in want]}")
        return problems
    for g, w in zip(got, want, strict=True):
        if g["shape"] and g["shape"] != list(w["shape"]):
            problems.append(f"{g['name']} shape {g['shape']} != {w['shape']}")
        if w["dtype"] not in g["dtype"]:
            problems.append(f"{g['name']} dtype {g['dtype']} != {w['dtype']}")
    return problems


def coreml_weights(path: Path, compressed: bool, min_size: int = 2048) -> dict[str, np.ndarray]:
    """The weight constants (>= ``min_size`` elements) stored in an .mlpackage as float32
    (``compressed``: linear-quantized weights are decompressed first)."""
    import coremltools as ct
    from coremltools.optimize.coreml import decompress_weights, get_weights_metadata

    model = ct.models.MLModel(str(path), skip_model_load=True)
    if compressed:
        model = decompress_weights(model)
    meta = get_weights_metadata(model, weight_threshold=min_size)
    return {k: np.asarray(v.val, dtype=np.float32) for k, v in meta.items()}


def weights_round_trip(
    stored: dict[str, np.ndarray], sources: list[np.ndarray], rel_tol: float
) -> dict:
    """Match every stored weight to a source tensor (PyTorch parameter or ONNX initializer).

    Layout changes (transposes, reshapes, fused batch norm in ONNX) are allowed for: a stored
    tensor matches a source with the same element count when their *sorted* values differ by at
    most ``rel_tol`` x max|source| (sorting makes the check layout-free; the sup norm between
    sorted vectors is at most that between the tensors). Returns counts and the worst relative
    error of the matched tensors.
    """
    by_size: dict[int, list[np.ndarray]] = {}
    for s in sources:
        by_size.setdefault(int(s.size), []).append(np.sort(s.astype(np.float32).ravel()))
    matched, worst, unmatched = 0, 0.0, []
    for name, w in stored.items():
        ws = np.sort(w.ravel())
        best = None
        for cand in by_size.get(int(w.size), []):
            scale = max(float(np.abs(cand).max()), 1e-12)
            err = float(np.abs(ws - cand).max()) / scale
            best = err if best is None else min(best, err)
        if best is not None and best <= rel_tol:
            matched += 1
            worst = max(worst, best)
        else:
            unmatched.append(name)
    return {
        "stored_tensors": len(stored),
        "matched": matched,
        "max_rel_error": round(worst, 6),
        "rel_tolerance": rel_tol,
        "unmatched": unmatched[:10],
        "passed": bool(stored) and not unmatched,
    }


def check_coreml(
    packages: dict[str, Path], io: dict, sources: list[np.ndarray], precision: str
) -> dict:
    """Linux-side checks of CoreML ``packages`` (``{"encoder": path, "decoder": path}``).

    ``io`` is the manifest's ``io`` section; ``sources`` the reference weights (PyTorch state
    dict tensors and ONNX fp32 initializers). Returns the record stored as the variant's
    ``accuracy`` (``measured: false``) with the checks and whether they passed.
    """
    import coremltools as ct

    tol = {"fp32": 1e-5, "fp16": 1e-3, "int8": 1.0 / 127}[precision]
    checks: dict[str, dict] = {}
    ok = True
    for part, path in packages.items():
        model = ct.models.MLModel(str(path), skip_model_load=True)
        proto = model.get_spec()
        inputs, outputs = _coreml_io(proto)
        problems = _io_matches(inputs, io[part]["inputs"]) + _io_matches(
            outputs, io[part]["outputs"]
        )
        rt = weights_round_trip(coreml_weights(path, precision == "int8"), sources, tol)
        part_ok = not problems and rt["passed"] and proto.WhichOneof("Type") == "mlProgram"
        ok = ok and part_ok
        checks[part] = {
            "spec_loads": True,
            "model_type": proto.WhichOneof("Type"),
            "spec_version": int(proto.specificationVersion),
            "inputs": inputs,
            "outputs": outputs,
            "io_matches_manifest": not problems,
            "io_problems": problems,
            "weights_round_trip": rt,
            "passed": part_ok,
        }
    return {
        "measured": False,
        "reason": (
            "CoreML prediction needs macOS; on Linux the export checks that each package "
            "loads, that its input/output names and shapes match the manifest and that the "
            "stored weights round-trip to the PyTorch/ONNX weights. Measure the mask Dice on "
            "a Mac before shipping (docs/mobile.md)."
        ),
        "checks": checks,
        "gate": {"passed": ok, "kind": "structural (Linux)"},
    }
