"""Our metrics agree with the official isic-challenge-scoring package on ISIC-named files."""

from __future__ import annotations

import numpy as np
import pytest

from skinscreen.evaluate.metrics import dice, jaccard, threshold_jaccard
from skinscreen.io.image import load_mask, save_mask_png


def test_simple_values():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[:5] = True
    b[2:7] = True
    assert dice(a, b) == pytest.approx(0.6)
    assert jaccard(a, b) == pytest.approx(30 / 70)
    assert threshold_jaccard(0.64) == 0.0 and threshold_jaccard(0.65) == 0.65
    assert dice(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == 1.0


def test_agrees_with_isic_challenge_scoring(tmp_path, predictor, sample_pairs):
    isic_seg = pytest.importorskip("isic_challenge_scoring.segmentation")
    truth_dir, pred_dir = tmp_path / "truth", tmp_path / "pred"
    truth_dir.mkdir()
    pred_dir.mkdir()
    ours = []
    for i, (img, mask_path) in enumerate(sample_pairs):
        truth = load_mask(mask_path)
        predictor.set_image(img)
        # a deliberately loose, shifted box for some images so scores spread across the 0.65 rule
        h, w = truth.shape
        box = [w * 0.05 * i, h * 0.1, w * (0.95 - 0.1 * i), h * 0.9] if i % 2 else None
        if box is None:
            from skinscreen.preprocess.transforms import box_from_mask

            box = box_from_mask(truth)
        pred = predictor.predict(box=box).mask
        save_mask_png(truth, truth_dir / f"{img.stem}_segmentation.png")
        save_mask_png(pred, pred_dir / f"{img.stem}_segmentation.png")
        j = jaccard(pred, truth)
        ours.append((dice(pred, truth), j, threshold_jaccard(j)))
    score = isic_seg.SegmentationScore.from_dir(truth_dir, pred_dir)
    macro = score.macro_average
    mean = np.mean(ours, axis=0)
    assert macro["dice"] == pytest.approx(mean[0], abs=1e-9)
    assert macro["jaccard"] == pytest.approx(mean[1], abs=1e-9)
    assert macro["threshold_jaccard"] == pytest.approx(mean[2], abs=1e-9)
