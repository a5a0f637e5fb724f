"""Automatic mode with the real LiteMedSAM bundle: predict() without a box, candidates, no lesion."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skinscreen.auto import auto_box, find_lesion_boxes
from skinscreen.errors import SkinscreenError
from skinscreen.evaluate.metrics import dice
from skinscreen.io.image import load_image, load_mask

from .test_auto_classical import add_lesion, skin_photo


def test_predict_without_box_on_sample_photos(predictor, sample_pairs):
    """Auto mode on the 4 ISIC 2017 samples. Measured Dice with the shipped learned localiser
    (onnx-int8): 0.945, 0.612, 0.962, 0.932; with the classical one alone (no shipped head):
    0.945, 0.763, 0.958, 0.309 (ISIC_0013128: a lesion merged with a purple blush)."""
    dices = {}
    for img_path, mask_path in sample_pairs:
        predictor.set_image(img_path)
        seg = predictor.predict(abstain=False)  # answer even where the estimate would abstain
        assert seg.box_source == "auto"
        assert seg.auto["n_candidates"] >= 1
        assert seg.auto["candidates"][0]["box"] == [round(float(v), 2) for v in seg.box]
        dices[img_path.stem] = dice(seg.mask, load_mask(mask_path))
        json.dumps(seg.to_json_dict())  # the auto info is JSON-ready
    assert sum(d > 0.9 for d in dices.values()) >= 2, dices
    assert sum(d > 0.7 for d in dices.values()) >= 3, dices
    assert np.mean(list(dices.values())) > 0.7, dices


def test_refined_candidates_are_ranked_and_inside_the_photo(predictor, sample_image):
    predictor.set_image(sample_image)
    cands = find_lesion_boxes(sample_image, predictor)
    methods = [c.method for c in cands]
    assert cands and set(methods) <= {"learned", "classical+decoder"}
    # the learned localiser's regions (when the model ships one) come first, each group ranked
    n_learned = methods.count("learned")
    assert methods[:n_learned] == ["learned"] * n_learned
    for group in (cands[:n_learned], cands[n_learned:]):
        assert [c.score for c in group] == sorted((c.score for c in group), reverse=True)
    h, w = sample_image.shape[:2]
    for c in cands:
        x0, y0, x1, y1 = c.box
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        if c.method == "classical+decoder":
            assert 0.0 <= c.features["iou_prediction"] <= 1.0
        else:
            assert 0.5 <= c.features["probability_peak"] <= 1.0


def test_find_lesion_boxes_encodes_a_new_photo_itself(predictor, sample_pairs):
    photo = load_image(sample_pairs[1][0])
    predictor.reset_image()
    cands = find_lesion_boxes(photo, predictor)
    assert cands
    assert predictor.encoding.image.shape == photo.shape


def test_no_lesion_is_reported_not_invented(predictor):
    plain = skin_photo(seed=5)
    predictor.set_image(plain)
    box, info = auto_box(plain, predictor)
    assert box is None and info["n_candidates"] == 0 and "no lesion" in info["note"]
    with pytest.raises(SkinscreenError, match="no lesion found"):
        predictor.predict()


def test_synthetic_lesion_found_and_segmented(predictor):
    img = skin_photo()
    truth = add_lesion(img, (400, 220), (60, 40))
    predictor.set_image(img)
    seg = predictor.predict()
    assert dice(seg.mask, truth) > 0.85


def test_automatic_outline_reports_say_check_it_drawn_box_reports_do_not(predictor, sample_pairs):
    """An assessment of an automatic outline carries the "check the outline" advisory, stronger
    on brown or dark skin; one from a drawn box does not."""
    from skinscreen.preprocess.transforms import box_from_mask
    from skinscreen.report.build import assess_image, automatic_outline_warning

    img_path, mask_path = sample_pairs[0]
    photo = load_image(img_path)
    predictor.set_image(photo)
    auto = predictor.predict()
    drawn = predictor.predict(box=box_from_mask(load_mask(mask_path)))
    a_auto = assess_image(photo, auto.mask, segmentation=auto)
    a_drawn = assess_image(photo, drawn.mask, segmentation=drawn)
    advisory = automatic_outline_warning(a_auto.props.skin_tone)
    assert advisory in a_auto.report.warnings
    assert not any("outlined automatically" in w for w in a_drawn.report.warnings)
    plain = automatic_outline_warning("very light")
    assert "--box" in plain and "brown" not in plain
    for tone in ("brown", "dark"):
        assert automatic_outline_warning(tone).startswith(plain)
        assert f"measures {tone}" in automatic_outline_warning(tone)
