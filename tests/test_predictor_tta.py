"""Test-time flips (``LesionPredictor(tta=True)``, ``--tta``) with the real LiteMedSAM bundle."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from skinscreen.evaluate.metrics import dice
from skinscreen.evaluate.parallel import PredictorRecipe
from skinscreen.io.image import load_image, load_mask
from skinscreen.postprocess.mask import clean_mask
from skinscreen.preprocess.transforms import box_from_mask, flip_box, flip_image

from .conftest import ROOT


@pytest.fixture(scope="module")
def tta_predictor():
    from skinscreen.predictor import LesionPredictor

    return LesionPredictor("litemedsam", engine="onnxruntime", tta=True)


def test_flip_geometry_is_its_own_inverse():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    box = np.array([0.5, 0.0, 2.0, 1.5])
    for h, v in ((True, False), (False, True), (True, True)):
        assert np.array_equal(flip_image(flip_image(image, h, v), h, v), image)
        assert np.allclose(flip_box(flip_box(box, (2, 3), h, v), (2, 3), h, v), box)
    assert np.allclose(flip_box(box, (2, 3), True, False), [1.0, 0.0, 2.5, 1.5])
    assert np.allclose(flip_box(box, (2, 3), False, True), [0.5, 0.5, 2.0, 2.0])
    # a pixel's box moves with the pixel
    mask = np.zeros((2, 3), bool)
    mask[0, 2] = True
    moved = flip_image(mask, True, True)
    assert np.allclose(flip_box(box_from_mask(mask), (2, 3), True, True), box_from_mask(moved))


def test_mirroring_the_photo_no_longer_changes_the_outline(tta_predictor, sample_pairs):
    """The outline of a mirrored photo is the mirrored outline (the same four views, averaged).
    Dice vs the expert, measured (single run -> flips): ISIC_0012099 0.952 -> 0.921,
    ISIC_0012143 (faint border) 0.684 -> 0.833."""
    for (img_path, mask_path), floor in zip(sample_pairs[:2], (0.9, 0.8), strict=True):
        photo, truth = load_image(img_path), load_mask(mask_path)
        box = box_from_mask(truth)
        tta_predictor.set_image(photo)
        seg = tta_predictor.predict(box=box)
        assert seg.tta_views == 4 and seg.to_json_dict()["tta_views"] == 4
        assert "tta_encoder" in seg.timings_ms and "tta_decoder" in seg.timings_ms
        assert dice(seg.mask, truth) > floor
        for h, v in ((True, False), (False, True)):
            tta_predictor.set_image(flip_image(photo, h, v))
            mirrored = tta_predictor.predict(box=flip_box(box, truth.shape, h, v))
            assert dice(flip_image(mirrored.mask, h, v), seg.mask) > 0.995


def test_the_outline_is_the_mean_of_the_four_single_runs(predictor, tta_predictor, sample_pairs):
    """Reference: the plain predictor on each mirror image (same box, its margin and box check),
    probabilities mirrored back and averaged, thresholded at 0.5, cleaned."""
    img_path, mask_path = sample_pairs[2]
    photo, truth = load_image(img_path), load_mask(mask_path)
    box = box_from_mask(truth)
    probs = []
    for h, v in ((False, False), (True, False), (False, True), (True, True)):
        predictor.set_image(flip_image(photo, h, v))
        single = predictor.predict(box=flip_box(box, truth.shape, h, v))
        probs.append(flip_image(single.probability, h, v))
    reference = clean_mask(np.mean(probs, axis=0) > 0.5)
    tta_predictor.set_image(photo)
    seg = tta_predictor.predict(box=box)
    assert dice(seg.mask, reference) > 0.999
    assert np.abs(seg.probability - np.mean(probs, axis=0)).max() < 1e-4
    assert PredictorRecipe.of(tta_predictor, 1).tta is True
    from skinscreen.report.build import assess_image

    assert assess_image(photo, seg.mask, segmentation=seg).report.segmentation.tta_views == 4
    assert PredictorRecipe.of(predictor, 1).tta is False


def test_segment_tta_from_the_command_line(tmp_path, sample_pairs):
    img, mask = sample_pairs[0]
    box = ",".join(f"{v:g}" for v in box_from_mask(load_mask(mask)))
    r = subprocess.run(
        [sys.executable, "-m", "skinscreen", "segment", str(img), "--box", box, "--tta"]
        + ["--out", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    (rec,) = json.loads(r.stdout)
    assert rec["tta_views"] == 4 and rec["box_source"] == "user"
