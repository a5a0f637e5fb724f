"""The re-prompt pair (decoder prelude + prompt decoder): an exact rewrite of the mask decoder.

Real weights, real photos: the PyTorch rewrite against the PyTorch decoder in float64 (exact up to
rounding), the bundle's ONNX pair against the bundle's decoder in ONNX Runtime (the path the
predictor runs), the manifest entries, and bundles written before the pair existed (fallback to
the plain decoder).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from skinscreen.evaluate.metrics import dice
from skinscreen.io.image import load_image, load_mask
from skinscreen.preprocess.transforms import box_from_mask, expand_box

PARTS = ("prelude", "prompt_decoder")


@pytest.fixture(scope="module")
def fp32():
    """The onnx-fp32 variant in ONNX Runtime: its plain decoder is the fp32 graph the re-prompt
    pair rewrites (the default variant's decoder is INT8, which differs by quantization)."""
    from skinscreen.predictor import LesionPredictor

    return LesionPredictor("litemedsam", engine="onnxruntime", variant="onnx-fp32", reprompt=True)


def _boxes(truth: np.ndarray) -> list[np.ndarray]:
    """The tight expert box, a loose one and a shifted one (original pixels, XYXY)."""
    box = box_from_mask(truth)
    w = box[2] - box[0]
    shifted = np.clip(box + np.array([0.1 * w, 0.0, 0.1 * w, 0.0]), 0, None)
    shifted[[0, 2]] = np.minimum(shifted[[0, 2]], truth.shape[1])
    return [box, expand_box(box, 0.15, truth.shape), shifted]


def test_torch_rewrite_is_exact_in_float64(predictor, sample_pairs):
    """PyTorch, float64: prelude + prompt decoder == the decoder to ~1e-9 on real embeddings."""
    torch = pytest.importorskip("torch", reason="the export extra (torch) is not installed")
    from skinscreen.export.models.reprompt import DecoderPrelude, PromptDecoder
    from skinscreen.export.onnx_export import DecoderGraph
    from skinscreen.export.reference import load_model

    net = load_model(predictor.spec).to(torch.float64)
    plain = DecoderGraph(net).eval()
    pre = DecoderPrelude(net.prompt_encoder, net.mask_decoder).eval()
    fast = PromptDecoder(net.prompt_encoder, net.mask_decoder).eval()
    worst = 0.0
    with torch.no_grad():
        for img_path, mask_path in sample_pairs:
            enc = predictor.encode(img_path)
            emb = torch.from_numpy(enc.embedding).to(torch.float64)
            feats = pre(emb)
            for box in _boxes(load_mask(mask_path)):
                b = torch.from_numpy(enc.transform.apply_boxes(box)).reshape(1, 4)
                want, want_iou = plain(emb, b)
                got, got_iou = fast(*feats, b)
                worst = max(worst, float((got - want).abs().max()))
                assert float((got_iou - want_iou).abs()) < 1e-9
    assert worst < 1e-9, worst


def test_bundle_lists_the_pair_with_hashes_and_io(predictor):
    m = predictor.bundle.manifest
    fp32 = m["variants"]["onnx-fp32"]["files"]
    for part in PARTS:
        assert fp32[part]["path"] == f"{part}.onnx"
        assert len(fp32[part]["sha256"]) == 64 and fp32[part]["bytes"] > 1_000_000
        assert part in m["io"]
    # the decoder's file and I/O are unchanged for apps; the prompt decoder has the same outputs
    assert [i["name"] for i in m["io"]["decoder"]["inputs"]] == ["image_embeddings", "boxes"]
    assert m["io"]["prompt_decoder"]["outputs"] == m["io"]["decoder"]["outputs"]
    names = [o["name"] for o in m["io"]["prelude"]["outputs"]]
    assert [i["name"] for i in m["io"]["prompt_decoder"]["inputs"]] == [*names, "boxes"]
    # every ONNX variant shares the fp32 pair; the export checked it against the decoder
    for key, v in m["variants"].items():
        if v["format"] in ("onnx", "openvino"):
            assert {p: v["files"][p] for p in PARTS} == {p: fp32[p] for p in PARTS}, key
    rep = m["parity"]["reprompt"]
    assert rep["mask_dice_min"] >= 0.999 and rep["logits_max_abs_diff"] <= 0.01
    assert not predictor.engine.has_reprompt  # loaded only on request (reprompt=True)


def test_fast_path_matches_the_decoder_on_sample_photos(fp32, sample_pairs):
    """ONNX Runtime fp32: prompt decoder vs plain decoder, same embedding, three boxes per photo:
    logits within float rounding, masks identical up to Dice 0.999."""
    predictor = fp32
    worst_diff, dices = 0.0, []
    for img_path, mask_path in sample_pairs:
        enc = predictor.set_image(img_path)
        assert enc.prelude is not None and "prelude" in enc.timings_ms
        for box in _boxes(load_mask(mask_path)):
            bm = enc.transform.apply_boxes(box)
            plain, plain_iou = predictor.engine.decode(enc.embedding, bm)
            fast, fast_iou = predictor.engine.decode(enc.embedding, bm, enc.prelude)
            worst_diff = max(worst_diff, float(np.abs(fast - plain).max()))
            assert abs(fast_iou - plain_iou) < 1e-3
            seg = predictor.predict(box=box, box_margin=0.0)  # the predictor's own path
            mask_plain = predictor.postprocess(plain)[0]
            dices.append(dice(seg.mask, mask_plain))
    assert worst_diff < 1e-3, worst_diff
    assert min(dices) >= 0.999, dices


def test_openvino_fast_path_matches_its_decoder(sample_pairs):
    """OpenVINO (bf16 where the CPU has it): the same comparison, with bf16 tolerances."""
    from skinscreen.engine import openvino as ovmod

    if not ovmod.openvino_available():
        pytest.skip("OpenVINO (the fast extra) is not installed")
    from skinscreen.predictor import LesionPredictor

    pred = LesionPredictor("litemedsam", engine="openvino", reprompt=True)
    assert pred.engine.has_reprompt
    dices = []
    for img_path, mask_path in sample_pairs[:2]:
        enc = pred.set_image(img_path)
        for box in _boxes(load_mask(mask_path)):
            bm = enc.transform.apply_boxes(box)
            plain = pred.postprocess(pred.engine.decode(enc.embedding, bm)[0])[0]
            fast = pred.predict(box=box, box_margin=0.0).mask
            dices.append(dice(fast, plain))
    assert min(dices) >= 0.99, dices


def _old_bundle(src, dst):
    """A copy of bundle ``src`` as written before the re-prompt pair existed (no files, no
    manifest entries)."""
    dst.mkdir()
    m = json.loads((src / "manifest.json").read_text())
    for v in m["variants"].values():
        for part in PARTS:
            v["files"].pop(part, None)
        v.pop("reprompt", None)
    for part in PARTS:
        m["io"].pop(part, None)
    m["parity"].pop("reprompt", None)
    keep = {f["path"] for v in m["variants"].values() for f in v["files"].values()}
    for rel in keep:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, dst / rel)
    (dst / "manifest.json").write_text(json.dumps(m))
    return dst


def test_old_bundle_falls_back_to_the_plain_decoder(fp32, sample_pairs, tmp_path):
    from skinscreen.predictor import LesionPredictor

    predictor = fp32
    root = _old_bundle(predictor.bundle.root, tmp_path / "old")
    old = LesionPredictor(bundle_dir=root, engine="onnxruntime", variant="onnx-fp32", reprompt=True)
    assert not old.engine.has_reprompt
    img_path, mask_path = sample_pairs[0]
    box = box_from_mask(load_mask(mask_path))
    enc = old.set_image(img_path)
    assert enc.prelude is None and "prelude" not in enc.timings_ms
    a = old.predict(box=box)
    predictor.set_image(img_path)
    b = predictor.predict(box=box)
    assert dice(a.mask, b.mask) >= 0.999


def test_encoding_without_prelude_uses_the_plain_decoder(fp32, sample_pairs):
    """An encoding built by hand (no prelude) still decodes, through the plain decoder."""
    predictor = fp32
    img_path, mask_path = sample_pairs[1]
    box = box_from_mask(load_mask(mask_path))
    enc = predictor.set_image(load_image(img_path))
    fast = predictor.predict(box=box).mask
    enc.prelude = None
    plain = predictor.predict(box=box).mask
    assert dice(fast, plain) >= 0.999


def test_tampered_prelude_is_refused(predictor, tmp_path):
    from skinscreen.engine.bundle import open_bundle
    from skinscreen.errors import BundleError

    src = predictor.bundle.root
    root = tmp_path / "b"
    root.mkdir()
    m = json.loads((src / "manifest.json").read_text())
    files = m["variants"]["onnx-fp32"]["files"]
    for f in files.values():
        shutil.copy2(src / f["path"], root / f["path"])
    (root / "manifest.json").write_text(json.dumps(m))
    data = bytearray((root / "prelude.onnx").read_bytes())
    data[-100] ^= 0xFF
    (root / "prelude.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="prelude.onnx"):
        open_bundle(root=root, variant="onnx-fp32")
