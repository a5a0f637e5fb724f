"""Edge variants on the real LiteMedSAM weights: each format (ONNX INT8/FP16, ORT Mobile, CoreML)
is built, gated against the fp32 PyTorch model on the sample photos and written with its figures;
the gate rejects a deliberately broken variant (INT8 on every MatMul and Conv, per tensor)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from skinscreen.engine.bundle import open_bundle, read_manifest, verify_files  # noqa: E402
from skinscreen.errors import BundleError, SkinscreenError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GATE_PHOTOS = sorted((ROOT / "examples" / "images").glob("*.jpg")) + sorted(
    (ROOT / "examples" / "phone").glob("*.jpg")
)


def fp32_copy(dst: Path) -> Path:
    """A fresh bundle holding only the cached bundle's onnx-fp32 variant."""
    src = open_bundle("litemedsam", variant="onnx-fp32")
    dst.mkdir(parents=True)
    m = json.loads(json.dumps(src.manifest))
    m["variants"] = {"onnx-fp32": m["variants"]["onnx-fp32"]}
    m["default_variant"] = "onnx-fp32"
    for f in m["variants"]["onnx-fp32"]["files"].values():
        shutil.copy2(src.root / f["path"], dst / f["path"])
    (dst / "manifest.json").write_text(json.dumps(m, indent=2))
    return dst


@pytest.fixture(scope="module")
def edge_bundle(tmp_path_factory) -> Path:
    """onnx-/ort-fp16 and -int8 and coreml-fp16 added to a copy of the fp32 bundle (each format
    and each precision; the full matrix with every CoreML precision takes longer)."""
    pytest.importorskip("coremltools")
    from skinscreen.export.variants import add_variants

    root = fp32_copy(tmp_path_factory.mktemp("edge") / "litemedsam")
    try:
        add_variants(root, ["onnx", "ort"], ["fp16", "int8"], gate_images=GATE_PHOTOS)
    except BundleError as e:
        # INT8 arithmetic depends on the CPU: a refusal here must be the gate's, for INT8 only,
        # with its figures recorded (int8_gated checks them); the float variants are written
        assert "accuracy gate" in str(e), e
        assert not [k for k in ("onnx-fp16", "ort-fp16") if f"{k}:" in str(e)], e
    add_variants(root, ["coreml"], ["fp16"], gate_images=GATE_PHOTOS)
    return root


def int8_gated(m: dict, key: str) -> bool:
    """True when the gate accepted INT8 variant ``key`` on this CPU; when it refused it, check
    that the refusal is recorded with its figures and this CPU's class (then False)."""
    if key in m["variants"]:
        return True
    rej = m["gate"]["rejected"][key]
    g = rej["gate"]
    assert not g["passed"] and g["reason"] and g["isa"] and "cpu_flags" in g, rej
    assert rej["n_images"] == len(GATE_PHOTOS) and rej["mask_dice_vs_fp32_min"] <= 1.0
    assert rej["mask_dice_vs_fp32_mean"] < 0.99 or rej["mask_dice_vs_fp32_min"] < 0.95
    return False


def test_manifest_records_every_variant_with_files_and_gate_figures(edge_bundle):
    m = read_manifest(edge_bundle)
    assert {"onnx-fp32", "onnx-fp16", "ort-fp16", "coreml-fp16"} <= set(m["variants"])
    int8 = {k: int8_gated(m, k) for k in ("onnx-int8", "ort-int8")}
    for key, v in m["variants"].items():
        verify_files(edge_bundle, m, key)  # sha256 + size of every file
        assert v["format"] in ("onnx", "ort", "coreml") and v["precision"] in (
            "fp32",
            "fp16",
            "int8",
        )
        acc = v["accuracy"]
        if v["format"] == "coreml":
            continue
        assert acc["n_images"] == len(GATE_PHOTOS)
        assert acc["gate"]["passed"], (key, acc["gate"])
        assert (
            acc["gate"]["isa"] == m["gate"]["isa"]
            and acc["gate"]["isa"] in acc["gate"]["isa_checked"]
        )
        assert acc["mask_dice_vs_fp32_mean"] >= 0.99 and acc["mask_dice_vs_fp32_min"] >= 0.95
        assert acc["dice_vs_expert_mean"] >= 0.85, (key, acc["dice_vs_expert_mean"])
    # the fastest gated CPU variant is the default; INT8 is smaller than fp32
    fastest = "onnx-int8" if int8["onnx-int8"] else "onnx-fp32"
    assert m["default_variant"] == fastest
    assert m["platform_defaults"]["cpu-x86_64"] == fastest
    assert m["platform_defaults"]["ios"] == "coreml-fp16"
    if not int8["onnx-int8"]:
        return
    # own files only: every onnx variant also lists the shared fp32 re-prompt pair
    size = {
        k: sum(f["bytes"] for p, f in v["files"].items() if p not in ("prelude", "prompt_decoder"))
        for k, v in m["variants"].items()
    }
    assert size["onnx-int8"] < 0.6 * size["onnx-fp32"]
    assert size["onnx-fp16"] < 0.55 * size["onnx-fp32"]
    # encoder FLOPs counted from the graph (LiteMedSAM: about 75 GFLOP)
    assert 70 < m["compute"]["encoder"]["total_gflop"] < 80
    q = m["variants"]["onnx-int8"]["quantization"]["encoder"]
    assert "dynamic" in q["method"] and q["float32_matmuls"] == 10
    # the shipped recipe's integer arithmetic is exact on every x86 kernel (u8 x u8 weights):
    # its gate holds on AVX2 and AVX-512 alike, never claimed for ARM64
    assert q["weight_type"] == "QUInt8" and q["isa_independent"]
    checked = m["variants"]["onnx-int8"]["accuracy"]["gate"]["isa_checked"]
    if m["gate"]["isa"] != "arm64":
        assert {"avx2", "avx512-vnni", "avx512-bf16"} <= set(checked) and "arm64" not in checked


def test_int8_default_runs_in_the_runtime_predictor(edge_bundle):
    from skinscreen.evaluate.metrics import dice
    from skinscreen.io.image import load_mask
    from skinscreen.predictor import LesionPredictor
    from skinscreen.preprocess.transforms import box_from_mask

    if not int8_gated(read_manifest(edge_bundle), "onnx-int8"):
        # refused on this CPU (figures checked): the runtime must not pick it
        p = LesionPredictor(bundle_dir=edge_bundle, threads=2)
        assert p.bundle.variant == "onnx-fp32"
        return
    fast = LesionPredictor(bundle_dir=edge_bundle, threads=2)
    ref = LesionPredictor(bundle_dir=edge_bundle, variant="onnx-fp32", threads=2)
    assert fast.bundle.variant == "onnx-int8"
    img = ROOT / "examples" / "images" / "ISIC_0012206.jpg"
    truth = load_mask(ROOT / "examples" / "masks" / "ISIC_0012206.png")
    box = box_from_mask(truth)
    fast.set_image(img)
    ref.set_image(img)
    a, b = fast.predict(box=box), ref.predict(box=box)
    assert a.variant == "onnx-int8"
    assert dice(a.mask, b.mask) >= 0.97
    assert dice(a.mask, truth) >= 0.9


def test_ort_variant_has_operator_config_and_runs(edge_bundle):
    m = read_manifest(edge_bundle)
    int8 = int8_gated(m, "ort-int8")
    v = m["variants"]["ort-int8" if int8 else "ort-fp16"]
    cfg = (edge_bundle / v["files"]["operators_config"]["path"]).read_text()
    ops = [ln for ln in cfg.splitlines() if ln and not ln.startswith("#")]
    assert any(ln.startswith("ai.onnx;") and "MatMul" in ln for ln in ops), cfg[:500]
    if int8:
        assert any("DynamicQuantizeMatMul" in ln or "MatMulInteger" in ln for ln in ops), cfg
    assert v["files"]["encoder"]["path"].endswith(".ort")
    assert "convert_onnx_models_to_ort" in v["conversion"]["tool"]
    assert v["accuracy"]["gate"]["passed"]


def test_coreml_variant_structural_checks(edge_bundle):
    import coremltools as ct

    m = read_manifest(edge_bundle)
    v = m["variants"]["coreml-fp16"]
    acc = v["accuracy"]
    assert acc["measured"] is False and "macOS" in acc["reason"]
    assert acc["gate"]["passed"]
    assert v["coreml"]["minimum_deployment_target"] == "iOS16"
    assert v["coreml"]["compute_units"] == "ALL" and v["coreml"]["compute_precision"] == "FLOAT16"
    for part in ("encoder", "decoder"):
        chk = acc["checks"][part]
        assert chk["io_matches_manifest"] and chk["model_type"] == "mlProgram"
        rt = chk["weights_round_trip"]
        assert rt["passed"] and rt["matched"] == rt["stored_tensors"] > 10
        assert rt["max_rel_error"] < 1e-3
        assert v["files"][part]["kind"] == "directory"
        spec = ct.models.MLModel(
            str(edge_bundle / v["files"][part]["path"]), skip_model_load=True
        ).get_spec()
        names = [i.name for i in spec.description.input]
        assert names == [i["name"] for i in m["io"][part]["inputs"]]
        assert spec.specificationVersion >= 7  # iOS16


def test_gate_rejects_a_broken_variant(tmp_path):
    from skinscreen.export.variants import add_variants

    root = fp32_copy(tmp_path / "broken")
    before = (root / "manifest.json").read_bytes()
    with pytest.raises(BundleError, match="accuracy gate") as e:
        add_variants(root, ["onnx"], ["int8"], gate_images=GATE_PHOTOS, int8_method="dynamic-all")
    assert "onnx-int8" in str(e.value) and "--force" in str(e.value)
    m = read_manifest(root)
    assert "onnx-int8" not in m["variants"] and not (root / "onnx-int8").exists()
    assert m["default_variant"] == "onnx-fp32"
    rej = m["gate"]["rejected"]["onnx-int8"]
    assert rej["mask_dice_vs_fp32_mean"] < 0.99 and not rej["gate"]["passed"]
    assert before != (root / "manifest.json").read_bytes()  # the figures are recorded
    assert not list(root.glob(".variants-tmp-*"))

    # --force writes it, flagged, and never makes it the default
    add_variants(root, ["onnx"], ["int8"], True, gate_images=GATE_PHOTOS, int8_method="dynamic-all")
    m = read_manifest(root)
    g = m["variants"]["onnx-int8"]["accuracy"]["gate"]
    assert g["forced"] and not g["passed"]
    assert m["default_variant"] == "onnx-fp32"


def test_gate_verdict_thresholds():
    from skinscreen.export.gate import gate_verdict

    ok, _ = gate_verdict({"mask_dice_vs_fp32_mean": 0.995, "mask_dice_vs_fp32_min": 0.96})
    assert ok
    bad_mean, why = gate_verdict({"mask_dice_vs_fp32_mean": 0.985, "mask_dice_vs_fp32_min": 0.97})
    assert not bad_mean and "mean" in why
    bad_worst, why = gate_verdict({"mask_dice_vs_fp32_mean": 0.995, "mask_dice_vs_fp32_min": 0.94})
    assert not bad_worst and "worst" in why


def test_bad_format_and_precision_names_are_clear_errors():
    from skinscreen.export.variants import FORMATS, PRECISIONS, parse_choices

    assert parse_choices("ORT, onnx", FORMATS, "format") == ["onnx", "ort"]
    with pytest.raises(SkinscreenError, match="unknown format tflite"):
        parse_choices("onnx,tflite", FORMATS, "format")
    with pytest.raises(SkinscreenError, match="fp32,fp16,int8"):
        parse_choices("int4", PRECISIONS, "precision")


def test_cli_export_rejects_unknown_format(tmp_path):
    import subprocess
    import sys

    root = fp32_copy(tmp_path / "cli")
    r = subprocess.run(
        [sys.executable, "-m", "skinscreen", "export", "--out", str(root), "--format", "tflite"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert "unknown format tflite" in r.stderr and len(r.stderr.strip().splitlines()) <= 2
    assert sorted(p.name for p in root.iterdir()) == [
        "decoder.onnx",
        "encoder.onnx",
        "manifest.json",
        "prelude.onnx",
        "prompt_decoder.onnx",
    ]


def _doc_example() -> str:
    text = (ROOT / "docs" / "mobile.md").read_text()
    block = text.split("<!-- example:start -->", 1)[1].split("<!-- example:end -->", 1)[0]
    return block.split("```python", 1)[1].split("```", 1)[0]


def test_mobile_worked_example_matches_runtime(edge_bundle):
    """docs/mobile.md's example (plain onnxruntime + NumPy + OpenCV on the .ort files) gives the
    runtime's mask for the same photo and box."""
    from skinscreen.io.image import load_mask
    from skinscreen.predictor import LesionPredictor
    from skinscreen.preprocess.transforms import box_from_mask

    ns: dict = {}
    exec(compile(_doc_example(), "docs/mobile.md", "exec"), ns)
    variant = "ort-int8" if int8_gated(read_manifest(edge_bundle), "ort-int8") else "ort-fp16"
    runtime = LesionPredictor(bundle_dir=edge_bundle, variant=variant, threads=2)
    for photo in GATE_PHOTOS:
        mpath = ROOT / "examples" / "masks" / f"{photo.stem}.png"
        if mpath.is_file():
            box = box_from_mask(load_mask(mpath))
        else:
            runtime.set_image(photo)
            h, w = runtime.image.shape[:2]
            box = [0.1 * w, 0.1 * h, 0.9 * w, 0.9 * h]
        app_mask = ns["segment"](edge_bundle, photo, box, variant)
        runtime.set_image(photo)
        seg = runtime.predict(box=box)
        assert app_mask.shape == seg.mask.shape and app_mask.dtype == bool
        differ = int((app_mask != seg.mask).sum())
        assert differ == 0, (photo.name, differ)
