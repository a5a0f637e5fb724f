"""Classical lesion proposals (no model): synthetic scenes with known answers, then real photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from skinscreen.auto import Candidate, find_lesion_boxes
from skinscreen.auto.artefacts import colour_artefact_mask, correct_vignetting, hair_mask, to_lab
from skinscreen.preprocess.transforms import box_from_mask, box_iou

SKIN = (222, 178, 150)  # light skin, RGB
LESION = (120, 70, 45)  # brown, RGB


def skin_photo(h: int = 480, w: int = 640, seed: int = 0) -> np.ndarray:
    """Skin-coloured photo with mild texture noise, ``(h, w, 3)`` uint8 RGB."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float32)
    img[:] = SKIN
    img += cv2.GaussianBlur(rng.normal(0, 6, (h, w, 1)).astype(np.float32), (0, 0), 2)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def add_lesion(img: np.ndarray, centre, axes, colour=LESION) -> np.ndarray:
    """Draw a soft-edged ellipse; returns its ``(H, W)`` bool mask."""
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.ellipse(mask, centre, axes, 20, 0, 360, 1, -1)
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 2)[..., None]
    img[:] = (img * (1 - soft) + np.array(colour, np.float32) * soft).astype(np.uint8)
    return mask.astype(bool)


def test_single_lesion_box_matches_the_drawn_ellipse():
    img = skin_photo()
    truth = add_lesion(img, (380, 200), (70, 45))
    cands = find_lesion_boxes(img)
    assert cands and isinstance(cands[0], Candidate)
    assert box_iou(cands[0].box, box_from_mask(truth)) > 0.8
    assert cands[0].method == "classical"
    x0, y0, x1, y1 = cands[0].box
    assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480  # XYXY in photo pixels


def test_plain_skin_gives_no_candidate():
    assert find_lesion_boxes(skin_photo(seed=3)) == []


def test_two_lesions_both_returned_bigger_darker_first():
    img = skin_photo()
    big = add_lesion(img, (250, 240), (80, 60))
    small = add_lesion(img, (540, 90), (25, 20), colour=(160, 110, 85))
    cands = find_lesion_boxes(img)
    assert len(cands) >= 2
    assert box_iou(cands[0].box, box_from_mask(big)) > 0.8
    assert any(box_iou(c.box, box_from_mask(small)) > 0.6 for c in cands[1:])


def test_sticker_at_the_border_is_not_a_candidate():
    img = skin_photo()
    truth = add_lesion(img, (300, 240), (40, 30))
    cv2.circle(img, (640, 420), 130, (30, 140, 230), -1)  # blue sticker cut by the frame
    sticker = np.zeros(img.shape[:2], bool)
    cv2.circle(sticker.view(np.uint8), (640, 420), 130, 1, -1)
    assert colour_artefact_mask(to_lab(img))[sticker].mean() > 0.9
    cands = find_lesion_boxes(img)
    assert box_iou(cands[0].box, box_from_mask(truth)) > 0.7
    assert all(box_iou(c.box, box_from_mask(sticker)) < 0.1 for c in cands)


def test_dark_vignette_corners_are_ignored():
    img = skin_photo()
    truth = add_lesion(img, (320, 240), (50, 40))
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(xx - w / 2, yy - h / 2) / (w / 2)
    fall = np.clip(1.3 - 0.9 * r, 0.05, 1.0)[..., None]  # dermoscope fall-off, black corners
    img = (img * fall).astype(np.uint8)
    _, vignette = correct_vignetting(img, to_lab(img))
    assert vignette[0, 0] and vignette[-1, -1] and not vignette[h // 2, w // 2]
    cands = find_lesion_boxes(img)
    assert box_iou(cands[0].box, box_from_mask(truth)) > 0.7


def test_hairs_do_not_hide_or_replace_the_lesion():
    img = skin_photo()
    truth = add_lesion(img, (320, 240), (60, 45))
    rng = np.random.default_rng(1)
    for _ in range(25):
        p0 = tuple(int(v) for v in rng.integers(0, [640, 480]))
        p1 = tuple(int(v) for v in rng.integers(0, [640, 480]))
        cv2.line(img, p0, p1, (40, 30, 25), 2)
    assert hair_mask(cv2.resize(img, (320, 240), interpolation=cv2.INTER_AREA)).mean() > 0.01
    cands = find_lesion_boxes(img)
    assert box_iou(cands[0].box, box_from_mask(truth)) > 0.7


def test_sample_photos_top_box_overlaps_expert_box(sample_pairs):
    """The 4 ISIC 2017 samples: measured top-1 box IoU (classical only).

    Measured: 0.94, 0.77, 0.84 and 0.15 (ISIC_0013128: the lesion merges with a purple blush
    below it; the model-side refinement does not rescue it either, see docs/auto.md).
    """
    from skinscreen.io.image import load_image, load_mask

    ious = []
    for img_path, mask_path in sample_pairs:
        cands = find_lesion_boxes(load_image(img_path))
        truth = box_from_mask(load_mask(mask_path))
        ious.append(box_iou(cands[0].box, truth) if cands else 0.0)
    assert sum(i > 0.7 for i in ious) >= 3, ious
    assert np.mean(ious) > 0.6, ious


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4, 3), np.uint8), np.full((64, 64, 3), 255, np.uint8)]
)
def test_degenerate_photos_give_no_candidate(bad):
    assert find_lesion_boxes(bad) == []
