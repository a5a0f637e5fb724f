"""Synthetic clips (known camera motion, exact truth) and the thumbnail motion estimator.

No model here: these check the test-video generator itself and the global-motion estimates the
tracker relies on, against the affines the clips were rendered with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from skinscreen.errors import SkinscreenError
from skinscreen.io.image import load_image, load_mask
from skinscreen.stream import motion as mo
from skinscreen.stream.synthetic import SCRIPTS, Segment, clip_from_files, make_clip

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _pair(stem: str = "ISIC_0012099") -> tuple[Path, Path]:
    return EXAMPLES / "images" / f"{stem}.jpg", EXAMPLES / "masks" / f"{stem}.png"


@pytest.fixture(scope="module")
def handheld():
    return clip_from_files(*_pair("ISIC_0012143"), "handheld")


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    t = int(a.sum()) + int(b.sum())
    return 1.0 if t == 0 else 2 * int((a & b).sum()) / t


def test_handheld_clip_covers_every_kind_of_motion(handheld):
    clip = handheld
    assert len(clip) == sum(s.n for s in SCRIPTS["handheld"]) == 64
    assert {"static", "pan", "zoom", "rotate", "brightness", "blur", "exit", "return"} <= set(
        clip.labels
    )
    f0 = clip.frames[0]
    assert f0.shape == (288, 384, 3) and f0.dtype == np.uint8
    assert all(m.shape == (288, 384) and m.dtype == bool for m in clip.masks)
    # the lesion leaves the view for several frames and comes back
    out = [i for i, v in enumerate(clip.in_view) if not v]
    assert len(out) >= 4 and clip.labels[out[0]] == "exit"
    assert clip.in_view[-1] and clip.visible_fraction(len(clip) - 1) > 0.99
    # zoom and roll really happen; brightness drops; the blur segment is blurred
    assert max(p.zoom for p in clip.poses) / clip.poses[0].zoom == pytest.approx(1.3, abs=0.02)
    assert max(abs(p.angle_deg) for p in clip.poses) == pytest.approx(14, abs=0.5)
    i_dark = clip.labels.index("blur")
    assert clip.frames[i_dark].mean() < 0.8 * f0.mean()
    assert clip.poses[i_dark].blur_sigma > 0


def test_truth_masks_follow_the_affines(handheld):
    """Warping frame 0's truth with the relative affine gives frame i's truth."""
    clip = handheld
    a0_inv = mo.invert(clip.affines[0])
    for i in range(1, len(clip), 5):
        rel = mo.compose(clip.affines[i], a0_inv)
        warped = mo.warp(clip.masks[0].astype(np.float32), rel, clip.masks[0].shape) >= 0.5
        # only the part of frame i that frame 0 also saw is comparable
        seen = mo.warp(np.ones(clip.masks[0].shape, np.float32), rel, clip.masks[0].shape) >= 1
        truth = clip.masks[i] & seen
        if truth.sum() > 500:
            assert _dice(warped & seen, truth) > 0.97, i


def test_clips_are_reproducible_and_seeded():
    img, msk = load_image(_pair()[0]), load_mask(_pair()[1])
    a = make_clip(img, msk, "static", seed=3)
    b = make_clip(img, msk, "static", seed=3)
    c = make_clip(img, msk, "static", seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames, strict=True))
    assert not np.array_equal(a.frames[1], c.frames[1])
    # sensor noise: consecutive static frames differ a little, never identical
    d = np.abs(a.frames[1].astype(int) - a.frames[2].astype(int)).mean()
    assert 0.3 < d < 8


def test_custom_script_and_bad_input():
    img, msk = load_image(_pair()[0]), load_mask(_pair()[1])
    clip = make_clip(img, msk, (Segment("pan", 3, pan_px=(30, 0)),), frame_hw=(120, 160))
    assert len(clip) == 3 and clip.frames[0].shape == (120, 160, 3)
    with pytest.raises(SkinscreenError, match="unknown clip script"):
        make_clip(img, msk, "wobble")
    with pytest.raises(SkinscreenError, match="empty"):
        make_clip(img, np.zeros_like(msk), "static")
    with pytest.raises(SkinscreenError, match="differ in size"):
        make_clip(img, msk[:-1], "static")


def test_phase_correlation_leaves_its_inputs_alone(handheld):
    a, b = mo.make_thumb(handheld.frames[0]), mo.make_thumb(handheld.frames[12])
    before = a.image.copy(), b.image.copy()
    mo.phase_shift(a, b)
    assert np.array_equal(a.image, before[0]) and np.array_equal(b.image, before[1])


def test_motion_estimates_match_the_rendered_affines(handheld):
    """Key frame -> frame motion from thumbnails, as the tracker chains it, vs the truth."""
    clip = handheld
    h, w = clip.frames[0].shape[:2]
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
    thumbs = [mo.make_thumb(f) for f in clip.frames]
    key, k2p, errors = 0, mo.IDENTITY, {}
    for i in range(1, clip.labels.index("exit")):
        est = mo.estimate_motion(thumbs[key], thumbs[i - 1], thumbs[i], k2p)
        true = mo.compose(clip.affines[i], mo.invert(clip.affines[key]))
        err = np.abs(mo.map_points(corners, est.affine) - mo.map_points(corners, true)).max()
        errors[i] = (clip.labels[i], round(float(err), 2), est.refined)
        k2p = est.affine
        if i % 12 == 0:
            key, k2p = i, mo.IDENTITY
    worst = max(e for _, e, _ in errors.values())
    assert worst < 1.5, errors
    assert all(r for _, _, r in errors.values())
    # brightness and blur do not fool it: ECC still agrees on those frames
    assert all(errors[i][1] < 1.0 for i in errors if errors[i][0] in ("brightness", "blur"))


def test_affine_helpers_roundtrip():
    a = np.array([[1.1, 0.2, 5.0], [-0.2, 1.1, -3.0]])
    assert np.allclose(mo.compose(a, mo.invert(a)), mo.IDENTITY)
    assert mo.affine_scale(a) == pytest.approx(np.sqrt(1.1**2 + 0.2**2))
    assert mo.affine_rotation_deg(a) == pytest.approx(np.degrees(np.arctan2(0.2, 1.1)))
    s = 128 / 384
    assert np.allclose(mo.thumb_to_frame(mo.frame_to_thumb(a, s), s), a)
    box = mo.map_box(np.array([0, 0, 10, 10]), np.array([[1, 0, 2.0], [0, 1, 3.0]]))
    assert np.allclose(box, [2, 3, 12, 13])
