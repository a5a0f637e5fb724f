"""Pure geometry: box transforms round-trip, padding is cropped, masks give boxes."""

from __future__ import annotations

import numpy as np
import pytest

from skinscreen.evaluate.dataset import jitter_box
from skinscreen.preprocess.transforms import (
    box_from_mask,
    compute_transform,
    crop_and_resize_logits,
    expand_box,
    preprocess,
)
from skinscreen.spec import LITEMEDSAM, MEDSAM_VIT_B


@pytest.mark.parametrize("hw", [(681, 1024), (1024, 681), (486, 486), (3000, 4000), (17, 900)])
def test_box_roundtrip_and_scale(hw):
    t = compute_transform(LITEMEDSAM, hw)
    assert max(t.resized_size) == 256
    box = np.array([3.5, 7.25, hw[1] - 2.0, hw[0] - 1.0])
    mb = t.apply_boxes(box)
    assert mb.max() <= 256.0 + 1e-6
    np.testing.assert_allclose(t.invert_boxes(mb), box, rtol=1e-12)


def test_stretch_transform_for_vitb():
    t = compute_transform(MEDSAM_VIT_B, (681, 1024))
    assert t.resized_size == (1024, 1024)
    np.testing.assert_allclose(t.apply_boxes([0, 0, 1024, 681]), [0, 0, 1024, 1024])


def test_preprocess_pads_bottom_right_and_normalises():
    img = np.random.default_rng(0).integers(20, 200, size=(300, 600, 3), dtype=np.uint8)
    x, t = preprocess(LITEMEDSAM, img)
    assert x.shape == (1, 3, 256, 256) and x.dtype == np.float32
    assert t.resized_size == (128, 256)
    assert x[:, :, 128:, :].max() == 0.0  # bottom padding
    inner = x[:, :, :128, :]
    assert inner.min() == 0.0 and inner.max() == pytest.approx(1.0)


def test_logits_crop_removes_padding():
    """Logits that are positive only inside the resized region map to the whole photo."""
    t = compute_transform(LITEMEDSAM, (300, 600))
    logits = np.full((256, 256), -5.0, np.float32)
    logits[:128, :] = 5.0  # the resized photo occupies rows 0..127
    full = crop_and_resize_logits(logits, t, 256)
    assert full.shape == (300, 600)
    assert (full > 0).all()


def test_box_from_mask_and_expand():
    m = np.zeros((50, 80), bool)
    m[10:21, 30:41] = True
    np.testing.assert_array_equal(box_from_mask(m), [30, 10, 41, 21])
    assert box_from_mask(np.zeros((5, 5), bool)) is None
    np.testing.assert_allclose(expand_box([30, 10, 40, 20], 0.1, (50, 80)), [29, 9, 41, 21])
    np.testing.assert_allclose(expand_box([0, 0, 80, 50], 0.1, (50, 80)), [0, 0, 80, 50])


def test_jitter_stays_valid():
    rng = np.random.default_rng(1)
    for _ in range(200):
        b = jitter_box(np.array([5.0, 5.0, 40.0, 30.0]), (32, 41), rng)
        assert 0 <= b[0] < b[2] <= 41 and 0 <= b[1] < b[3] <= 32


def test_photo_size_in_a_scaled_frame():
    """The photo's part of the low-res frame: the same numbers crop_and_resize_logits, the box
    check and the training losses use (at least 1 px, Python rounding)."""
    t = compute_transform(LITEMEDSAM, (681, 1024))  # resized to (170, 256) in 256 px
    assert t.resized_size == (170, 256)
    assert t.photo_size_in(256) == (170, 256)
    assert t.photo_size_in(64) == (42, 64)  # 42.5 rounds to even
    assert compute_transform(LITEMEDSAM, (1, 4000)).photo_size_in(64) == (1, 64)
