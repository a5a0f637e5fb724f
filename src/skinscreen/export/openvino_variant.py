"""The ``openvino-bf16`` bundle variant: the fp32 ONNX graphs run by OpenVINO at bfloat16, gated.

It has no files of its own. Its manifest entry repeats ``onnx-fp32``'s file entries (path, sha256,
bytes) and says so (``shares_files_with``), so :func:`skinscreen.engine.bundle.verify_files`
checks the files it runs like any other variant's, and a rebuilt fp32 graph (new sha256) makes
the recorded gate figures unusable instead of silently wrong.

The gate is the one every variant passes (:mod:`skinscreen.export.gate`): the encoder and decoder
run in OpenVINO with ``INFERENCE_PRECISION_HINT=bf16`` on the gate photos and the masks are compared
with the fp32 PyTorch masks (mean Dice >= 0.99, worst >= 0.95). bf16 arithmetic needs native CPU
support, so the variant is built only on a CPU whose OpenVINO plugin reports ``BF16``; the manifest
records that CPU. ``skinscreen export`` builds it when asked (``--format openvino``) and, by default,
whenever the ``fast`` extra is installed and the CPU has bf16 (about 20 s on the 2-core dev
machine: one OpenVINO compile and 17 gate photos).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from skinscreen.errors import BundleError, MissingExtraError

VARIANT = "openvino-bf16"
SOURCE_VARIANT = "onnx-fp32"
FORMAT = "openvino"
GATE_THREADS = 2

Progress = Callable[[str], None]


def split_formats(formats: str | None) -> tuple[str | None, bool]:
    """``"onnx,openvino"`` -> (``"onnx"``, True): the formats for
    :func:`skinscreen.export.variants.export_variants_step` and whether OpenVINO was asked for.
    ``"openvino"`` alone -> (None, True)."""
    if formats is None:
        return None, False
    from skinscreen.errors import SkinscreenError
    from skinscreen.export.variants import FORMATS

    items = [s.strip() for s in formats.split(",") if s.strip()]
    bad = [s for s in items if s.lower() not in (*FORMATS, FORMAT)]
    if bad or not items:
        raise SkinscreenError(
            f"unknown format {', '.join(bad) or '(empty)'}: choose any of "
            f"{','.join((*FORMATS, FORMAT))}"
        )
    asked = any(s.lower() == FORMAT for s in items)
    rest = [s for s in items if s.lower() != FORMAT]
    return (",".join(rest) if rest else None), asked


def cpu_description() -> dict:
    """CPU model name and its bf16-related flags (from /proc/cpuinfo where it exists)."""
    out: dict = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith("model name"):
            out["model"] = line.split(":", 1)[1].strip()
            break
    flags = next(
        (ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []
    )
    out["bf16_flags"] = [f for f in ("avx512_bf16", "amx_bf16", "avx512_vnni") if f in flags]
    return out


def build_entry(manifest: dict, accuracy: dict, engine_info: dict) -> dict:
    """The manifest entry of ``openvino-bf16`` (``onnx-fp32``'s file entries, engine settings,
    gate figures)."""
    files = copy.deepcopy(manifest["variants"][SOURCE_VARIANT]["files"])
    return {
        "format": FORMAT,
        "precision": "bf16",
        "engine": "openvino",
        "files": files,
        "shares_files_with": SOURCE_VARIANT,
        "openvino": {
            "version": engine_info.get("openvino"),
            "device": "CPU",
            "config": {
                "INFERENCE_PRECISION_HINT": "bf16",
                "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_NUM_THREADS": "the runtime's threads",
            },
            "parts": {part: "openvino bf16" for part in files},
            "requires": "a CPU whose OpenVINO plugin reports BF16 (AVX512-BF16 or AMX)",
            "gated_on_cpu": cpu_description(),
            "note": "reads the fp32 ONNX files; Python runtime only (apps use the ORT/CoreML variants)",
        },
        "accuracy": accuracy,
    }


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def add_openvino_variant(
    bundle_dir: str | Path,
    *,
    force: bool = False,
    gate_images: list[Path] | None = None,
    checkpoint: Path | None = None,
    progress: Progress | None = None,
) -> dict:
    """Gate OpenVINO bf16 on the bundle's fp32 graphs and add ``openvino-bf16`` to its manifest.

    Raises :class:`MissingExtraError` without the ``fast`` extra, :class:`BundleError` when the
    CPU has no native bf16 or when the gate fails without ``force`` (nothing is written then).
    Returns the variant's manifest entry.
    """
    from skinscreen.engine import openvino as ovmod
    from skinscreen.engine.bundle import read_manifest, verify_files
    from skinscreen.export import require_torch
    from skinscreen.export.gate import gate_record, measure_engine
    from skinscreen.export.variants import gate_reference, platform_defaults
    from skinscreen.spec import get_spec

    require_torch("building the openvino-bf16 variant")
    if not ovmod.openvino_available():
        raise MissingExtraError("fast", "--format openvino")
    if not ovmod.cpu_supports_bf16():
        raise BundleError(
            "this CPU has no native bf16 (OpenVINO reports no BF16): openvino-bf16 can only be "
            "gated on a CPU with AVX512-BF16 or AMX; nothing was written"
        )
    import torch

    say = progress or (lambda msg: None)
    root = Path(bundle_dir)
    manifest = read_manifest(root)
    verify_files(root, manifest, SOURCE_VARIANT)
    spec = get_spec(manifest["model"])
    torch.set_num_threads(min(GATE_THREADS, torch.get_num_threads()))
    say("openvino-bf16: fp32 reference masks on the gate photos")
    _, reference = gate_reference(spec, checkpoint, gate_images)
    files = manifest["variants"][SOURCE_VARIANT]["files"]
    say(f"gate: {VARIANT} (OpenVINO {ovmod.openvino_version()}) on {len(reference.cases)} photos")
    engine = ovmod.OpenVinoEngine(
        root / files["encoder"]["path"],
        root / files["decoder"]["path"],
        threads=GATE_THREADS,
        precision="bf16",
        cache=None,  # the export writes nothing outside the bundle
        **{
            f"{part}_path": root / files[part]["path"]
            for part in ("prelude", "prompt_decoder")
            if part in files
        },
    )
    accuracy = measure_engine(reference, engine)
    accuracy["engine"] = engine.describe()
    accuracy["gate"] = gate_record(accuracy, forced=force)
    if not accuracy["gate"]["passed"] and not force:
        raise BundleError(
            f"variants not written (accuracy gate): {VARIANT}: {accuracy['gate']['reason']}. "
            "Pass --force to write it anyway"
        )
    m = json.loads(json.dumps(manifest))  # deep copy
    m["variants"][VARIANT] = build_entry(manifest, accuracy, accuracy["engine"])
    m["platform_defaults"] = platform_defaults(m["variants"])
    m.setdefault("versions", {})["openvino"] = ovmod.openvino_version()
    m["variants_updated"] = datetime.now(UTC).isoformat(timespec="seconds")
    _write_json_atomic(root / "manifest.json", m)
    return m["variants"][VARIANT]


def openvino_step(
    root: Path,
    *,
    asked: bool,
    default: bool,
    force: bool,
    say: Progress | None = None,
    checkpoint: Path | None = None,
) -> dict | None:
    """The OpenVINO step of ``skinscreen export``.

    ``asked`` (``--format`` names openvino): build it or fail (exit 1). ``default`` (no
    ``--format``/``--precision``/``--checkpoint``): build it when the ``fast`` extra is installed
    and the CPU has bf16; a failed gate only warns (the bundle stays usable). Otherwise nothing.
    """
    from skinscreen.engine import openvino as ovmod

    say = say or (lambda msg: None)
    if not asked:
        if not default or not ovmod.openvino_available():
            return None
        if not ovmod.cpu_supports_bf16():
            say(f"note: {VARIANT} not built: this CPU has no native bf16")
            return None
    try:
        entry = add_openvino_variant(root, force=force, checkpoint=checkpoint, progress=say)
    except BundleError as e:
        if asked or "accuracy gate" not in str(e):
            raise
        say(f"warning: {e}")
        return None
    a = entry["accuracy"]
    say(
        f"  {VARIANT}: shares {SOURCE_VARIANT}'s files, mask Dice vs fp32 mean "
        f"{a['mask_dice_vs_fp32_mean']:.4f} min {a['mask_dice_vs_fp32_min']:.4f} on "
        f"{a['n_images']} photos (OpenVINO {a['engine']['openvino']})"
    )
    return entry
