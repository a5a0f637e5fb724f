"""Frame quality scores and the best-frame picker, on synthetic clips with exact truth masks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from skinscreen.preprocess.transforms import box_from_mask
from skinscreen.stream.quality import BestFramePicker, frame_quality, sharpness
from skinscreen.stream.synthetic import clip_from_files

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def clip():
    stem = "ISIC_0013128"
    return clip_from_files(
        EXAMPLES / "images" / f"{stem}.jpg", EXAMPLES / "masks" / f"{stem}.png", "handheld"
    )


def test_sharpness_falls_with_blur(clip):
    gray = cv2.cvtColor(clip.frames[0], cv2.COLOR_RGB2GRAY)
    values = [
        sharpness(cv2.GaussianBlur(gray, (0, 0), s)) if s else sharpness(gray) for s in (0, 1, 2, 4)
    ]
    assert values == sorted(values, reverse=True)
    assert values[-1] < 0.2 * values[0]


def test_exposure_penalises_clipped_and_dark_frames(clip):
    f, m = clip.frames[0], clip.masks[0]
    good = frame_quality(f, m, box_from_mask(m))
    dark = frame_quality((f * 0.25).astype(np.uint8), m, box_from_mask(m))
    blown = frame_quality(np.clip(f.astype(int) * 3, 0, 255).astype(np.uint8), m, box_from_mask(m))
    assert good.exposure_score > 0.95
    assert dark.exposure_score < 0.6 * good.exposure_score
    assert blown.exposure_score < 0.6 * good.exposure_score
    assert good.complete and good.centring_score > 0.9


def test_no_lesion_scores_zero(clip):
    q = frame_quality(clip.frames[0], None)
    assert q.score == 0.0 and q.centring_score == 0.0 and not q.complete
    assert BestFramePicker().offer(0, clip.frames[0], None, q) is False


def test_best_frame_is_sharp_complete_and_centred(clip):
    """Offered every frame with its truth mask, the picker avoids blurred, cut and off-centre ones."""
    picker = BestFramePicker()
    scores = []
    for i, (f, m) in enumerate(zip(clip.frames, clip.masks, strict=True)):
        q = frame_quality(f, m if m.any() else None, box_from_mask(m) if m.any() else None)
        scores.append(q.score)
        picker.offer(i, f, m if m.any() else None, q, box_from_mask(m))
    best = picker.best
    assert best is not None and best.quality.score == max(scores)
    assert clip.labels[best.index] not in ("blur", "exit", "return")
    assert best.quality.complete and best.quality.centring_score > 0.9
    assert np.array_equal(best.frame, clip.frames[best.index])
    blur = [s for s, lab in zip(scores, clip.labels, strict=True) if lab == "blur"]
    assert max(blur) < 0.6 * best.quality.score
