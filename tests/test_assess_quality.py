"""Photo-quality warnings and scale resolution on the sample photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from skinscreen.assess.features import LesionProperties
from skinscreen.assess.quality import assess_quality
from skinscreen.assess.scale import DERMOSCOPE_PRESETS, resolve_scale
from skinscreen.errors import SkinscreenError
from skinscreen.io.image import load_image, load_mask


@pytest.fixture(scope="module")
def pairs(sample_pairs):
    return [(load_image(i), load_mask(m)) for i, m in sample_pairs]


def _has(q, word: str) -> bool:
    return any(word in w for w in q.warnings)


def test_sample_photos_pass(pairs):
    for image, mask in pairs:
        q = assess_quality(image, mask)
        assert q.ok, q.warnings
        assert not q.touching_border and not q.too_small
        assert q.color_cast_deg < 15


def test_blur_is_flagged(pairs):
    for image, mask in pairs:
        q = assess_quality(cv2.GaussianBlur(image, (0, 0), 3), mask)
        assert _has(q, "blurred"), q.sharpness


def test_overexposure_and_darkness_are_flagged(pairs):
    image, mask = pairs[0]
    bright = np.clip(image.astype(np.int16) + 120, 0, 255).astype(np.uint8)
    assert _has(assess_quality(bright, mask), "overexposed")
    dark = (image // 8).astype(np.uint8)
    assert _has(assess_quality(dark, mask), "too dark")


def test_blue_cast_is_flagged(pairs):
    image, mask = pairs[0]
    blue = np.clip(image * np.array([0.6, 0.8, 1.25]), 0, 255).astype(np.uint8)
    q = assess_quality(blue, mask)
    assert _has(q, "colour cast")


def test_touching_border_and_tiny_lesion():
    image = np.full((200, 300, 3), 200, np.uint8)
    mask = np.zeros((200, 300), bool)
    mask[0:40, 100:160] = True
    image[mask] = (90, 50, 30)
    q = assess_quality(image, mask)
    assert q.touching_border and _has(q, "edge of the photo")
    tiny = np.zeros((200, 300), bool)
    tiny[100:110, 150:160] = True
    q = assess_quality(image, tiny)
    assert q.too_small and _has(q, "closer photo")


def test_lesion_filling_the_photo_is_flagged(pairs):
    image, _ = pairs[0]
    mask = np.zeros(image.shape[:2], bool)
    mask[10:-10, 10:-10] = True
    q = assess_quality(image, mask, LesionProperties(mask, image))
    assert _has(q, "check the outline")


def test_scale_from_user_and_presets():
    assert resolve_scale(None, None, (681, 1024)).mm_per_pixel is None
    s = resolve_scale(0.02, None, (681, 1024))
    assert s.mm_per_pixel == 0.02 and s.source == "user"
    s = resolve_scale(None, "fov20", (681, 1024))
    assert s.mm_per_pixel == pytest.approx(20 / 1024) and s.source == "dermoscope:fov20"
    assert set(DERMOSCOPE_PRESETS) == {"fov10", "fov15", "fov20", "fov25"}
    with pytest.raises(SkinscreenError, match="not both"):
        resolve_scale(0.02, "fov20", (10, 10))
    with pytest.raises(SkinscreenError, match="positive"):
        resolve_scale(-1, None, (10, 10))
    with pytest.raises(SkinscreenError, match="fov10"):
        resolve_scale(None, "dermlite-xyz", (10, 10))
