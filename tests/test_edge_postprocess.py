"""The fast hole filling (OpenCV flood fill) gives exactly scipy's ``binary_fill_holes``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from skinscreen.io.image import load_mask
from skinscreen.postprocess.mask import clean_mask, fill_holes

ROOT = Path(__file__).resolve().parents[1]


def test_fill_holes_matches_scipy_on_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(1, 70, 2))
        m = rng.random((h, w)) < rng.random()
        assert np.array_equal(fill_holes(m), ndimage.binary_fill_holes(m)), (h, w)


def test_fill_holes_on_expert_masks_with_punched_holes():
    rng = np.random.default_rng(1)
    for p in sorted((ROOT / "examples" / "masks").glob("*.png")):
        m = load_mask(p)
        holed = m & (rng.random(m.shape) > 0.02)
        out = fill_holes(holed)
        assert out.dtype == bool and out.shape == m.shape
        assert np.array_equal(out, ndimage.binary_fill_holes(holed))
        assert np.array_equal(clean_mask(holed), ndimage.binary_fill_holes(holed))


def test_fill_holes_ring_and_edges():
    ring = np.zeros((9, 9), bool)
    ring[2:7, 2:7] = True
    ring[4, 4] = False
    assert fill_holes(ring)[4, 4]
    open_ring = ring.copy()
    open_ring[4, 2] = False  # the hole now touches the outside through a 4-connected gap
    open_ring[4, 3] = False
    assert not fill_holes(open_ring)[4, 4]
    assert fill_holes(np.ones((3, 3), bool)).all()
    assert not fill_holes(np.zeros((1, 1), bool)).any()


def test_clean_mask_on_the_foreground_rectangle_equals_the_whole_photo():
    """clean_mask works on the foreground's bounding rectangle: same mask as labelling and
    flood-filling the whole photo, for hand-drawn shapes (a disc with a hole, a second smaller
    blob, a ring touching the border, an empty mask, a full mask) and random masks."""
    from skinscreen.postprocess.mask import largest_component

    def whole(mask):
        return fill_holes(largest_component(mask)).astype(bool)

    h, w = 120, 200
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - 60) ** 2 + (xx - 80) ** 2 < 30**2
    hole = (yy - 60) ** 2 + (xx - 80) ** 2 < 8**2
    blob = (yy - 20) ** 2 + (xx - 170) ** 2 < 6**2
    ring = ((yy - 0) ** 2 + (xx - 199) ** 2 < 40**2) & ((yy - 0) ** 2 + (xx - 199) ** 2 > 25**2)
    shapes = [
        disc & ~hole,
        (disc & ~hole) | blob,
        ring,
        ring | (disc & ~hole),
        np.zeros((h, w), bool),
        np.ones((h, w), bool),
    ]
    rng = np.random.default_rng(0)
    shapes += [ndimage.binary_opening(rng.random((h, w)) > 0.55) for _ in range(10)]
    for m in shapes:
        assert np.array_equal(clean_mask(m), whole(m))
    assert clean_mask(disc & ~hole).sum() == disc.sum()  # the hole is filled
