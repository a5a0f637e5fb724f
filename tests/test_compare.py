"""Comparing two photos of one lesion: synthetic re-takes with known truth, refusals, identity,
the change report, and the ruler scale. Bounded: about a dozen registrations and 3 model pairs."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from skinscreen.compare.change import compare_photos
from skinscreen.compare.noise import NoiseFloor, default_noise_floor
from skinscreen.compare.registration import NotSameLesionError, apply_homography, register
from skinscreen.compare.ruler import draw_ruler, find_ruler_scale
from skinscreen.compare.synthetic import grow_lesion, retake, similarity_matrix
from skinscreen.io.image import load_image, load_mask
from tests.conftest import EXAMPLES, ROOT

SKINSCREEN = [sys.executable, "-m", "skinscreen"]
LIGHT = dict(gain=1.15, gamma=0.9, tint=(1.05, 1.0, 0.94), blur_sigma=0.8, jpeg_quality=80)


def _sample(sid: str):
    return (
        load_image(EXAMPLES / "images" / f"{sid}.jpg"),
        load_mask(EXAMPLES / "masks" / f"{sid}.png"),
    )


def _box(mask):
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]


def _grid(size_hw):
    h, w = size_hw
    return np.array([[x, y] for x in np.linspace(0, w - 1, 6) for y in np.linspace(0, h - 1, 6)])


def _ratio_error(measured_rel: float, truth_rel: float) -> float:
    """Relative error of the measured area ratio later / earlier."""
    return abs((1 + measured_rel) / (1 + truth_rel) - 1)


@pytest.mark.parametrize(
    "sid,factor,angle,zoom,tilt",
    [
        ("ISIC_0012206", 0.8, -20.0, 0.9, 0.0),
        ("ISIC_0013128", 1.3, 8.0, 1.15, -6e-5),
    ],
)
def test_synthetic_change_with_expert_masks(sid, factor, angle, zoom, tilt):
    """Known growth, homography and lighting; the true outlines: the measured area change is
    within 5 % (relative) of the truth."""
    photo, mask = _sample(sid)
    grown, grown_mask = grow_lesion(photo, mask, factor)
    truth = grown_mask.sum() / mask.sum() - 1
    hmat = similarity_matrix(photo.shape[:2], angle, zoom, (12, -9), tilt=tilt)
    later = retake(grown, hmat, **LIGHT)
    h, w = photo.shape[:2]
    later_mask = cv2.warpPerspective(grown_mask.astype(np.float32), hmat, (w, h)) >= 0.5
    floor = NoiseFloor(0.05, 0.05, 0.05, 0.1, "test")
    c = compare_photos(photo, later, earlier_mask=mask, later_mask=later_mask, noise_floor=floor)
    r = c.report
    assert r.registration.ok
    assert _ratio_error(r.change.area_rel, truth) <= 0.05, (r.change.area_rel, truth)
    assert r.verdict == ("grown" if factor > 1 else "shrunk")


@pytest.mark.parametrize(
    "sid,angle,zoom,tilt",
    [("ISIC_0012099", 15.0, 1.15, 6e-5), ("ISIC_0012206", -25.0, 0.85, -5e-5)],
)
def test_registration_error_within_2px(sid, angle, zoom, tilt):
    photo, _ = _sample(sid)
    hmat = similarity_matrix(photo.shape[:2], angle, zoom, (20, 10), tilt=tilt)
    reg = register(photo, retake(photo, hmat, **LIGHT))
    assert reg.ok and reg.inliers >= 25
    g = _grid(photo.shape[:2])
    err = np.linalg.norm(apply_homography(reg.matrix, g) - apply_homography(hmat, g), axis=1)
    assert err.max() <= 2.0, err.max()
    assert reg.reprojection_error_px < 2.0


def test_synthetic_change_with_the_model(predictor):
    """The whole pipeline (box carried, both outlined by LiteMedSAM) on a grown re-take."""
    photo, mask = _sample("ISIC_0012099")
    grown, grown_mask = grow_lesion(photo, mask, 1.2)
    truth = grown_mask.sum() / mask.sum() - 1
    hmat = similarity_matrix(photo.shape[:2], 12.0, 1.1, (15, -20), tilt=5e-5)
    c = compare_photos(photo, retake(grown, hmat, **LIGHT), predictor, box=_box(mask))
    assert _ratio_error(c.report.change.area_rel, truth) <= 0.05, (c.report.change.area_rel, truth)
    floor = default_noise_floor().area_rel
    if c.report.change.area_rel > floor:
        assert c.report.verdict == "grown"
    else:  # inside the noise floor: never called growth or shrinkage
        assert c.report.verdict in ("no measurable change", "changed shape or colour")
    assert c.report.change.grown_fraction > c.report.change.shrunk_fraction


def test_identical_photos_give_zero_change(predictor):
    photo, mask = _sample("ISIC_0012206")
    c = compare_photos(photo, photo, predictor, box=_box(mask))
    ch = c.report.change
    assert ch.area_rel == 0 and ch.diameter_max_rel == 0
    assert ch.asymmetry_delta == 0 and ch.border_delta == 0
    assert ch.colors_added == [] and ch.colors_lost == []
    assert c.report.verdict == "no measurable change"
    assert c.report.registration.reprojection_error_px < 0.5


def test_unrelated_photos_are_refused():
    a, _ = _sample("ISIC_0012099")
    b, _ = _sample("ISIC_0013128")
    assert not register(a, b).ok
    with pytest.raises(NotSameLesionError):
        compare_photos(a, b, earlier_mask=np.ones(a.shape[:2], bool), later_mask=None)


def test_cli_refuses_unrelated_photos_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    p = subprocess.run(
        [
            *SKINSCREEN,
            "compare",
            str(EXAMPLES / "images" / "ISIC_0012099.jpg"),
            str(EXAMPLES / "images" / "ISIC_0012143.jpg"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert p.returncode == 1, p.stderr
    assert "do not show the same skin" in p.stderr
    assert not out.exists()


def test_cli_change_report(tmp_path):
    photo, mask = _sample("ISIC_0012206")
    grown, _ = grow_lesion(photo, mask, 1.6)
    hmat = similarity_matrix(photo.shape[:2], -10.0, 1.05, (10, 5))
    Image.fromarray(photo).save(tmp_path / "march.png")
    Image.fromarray(retake(grown, hmat, **LIGHT)).save(tmp_path / "june.jpg", quality=92)
    b = ",".join(str(round(v)) for v in _box(mask))
    out = tmp_path / "report"
    p = subprocess.run(
        [
            *SKINSCREEN,
            "compare",
            str(tmp_path / "march.png"),
            str(tmp_path / "june.jpg"),
            "--box",
            b,
            "--mm-per-pixel",
            "0.045",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    for k in ("registration", "earlier", "later", "change", "noise_floor", "verdict"):
        assert k in r
    for k in ("ok", "method", "inliers", "reprojection_error_px"):
        assert k in r["registration"]
    for k in (
        "area_rel",
        "diameter_max_rel",
        "area_mm2_delta",
        "diameter_max_mm_delta",
        "asymmetry_delta",
        "border_delta",
        "colors_added",
        "colors_lost",
    ):
        assert k in r["change"]
    assert r["change"]["area_mm2_delta"] > 0
    assert set(r["noise_floor"]) >= {"area_rel", "diameter_max_rel"}
    assert r["verdict"] == "grown"
    assert r["disclaimer"] and r["earlier"]["area_px"] > 0
    html = (out / "change.html").read_text()
    assert r["disclaimer"] in html and html.count("<img") == 3 and "Noise floor" in html
    assert {f.name for f in out.iterdir()} == {
        "change.json",
        "change.html",
        "change_aligned.png",
        "change_contours.png",
        "change_growth.png",
    }


def test_schema_is_current():
    from skinscreen.compare.schema import json_schema_text

    committed = (ROOT / "docs" / "compare.schema.json").read_text()
    assert committed == json_schema_text(), (
        "docs/compare.schema.json is stale: "
        "python -m skinscreen.compare.schema > docs/compare.schema.json"
    )


@pytest.mark.parametrize(
    "px_per_mm,angle", [(20.0, 0.0), (33.3, 25.0), (40.0, -60.0), (25.0, 135.0), (12.5, 90.0)]
)
def test_ruler_drawn_at_known_pitch(px_per_mm, angle):
    base = load_image(EXAMPLES / "phone" / "PAD_PAT_1020_111_593.jpg")
    h, w = base.shape[:2]
    a = np.radians(angle)
    origin = (w / 2 - np.cos(a) * px_per_mm * 5, h / 2 + np.sin(a) * px_per_mm * 5)
    found = find_ruler_scale(draw_ruler(base, origin, angle, px_per_mm))
    assert found is not None
    assert abs(found.mm_per_pixel * px_per_mm - 1) <= 0.03
    assert found.uncertainty_mm_per_pixel < 0.03 * found.mm_per_pixel


def test_no_ruler_no_scale():
    assert find_ruler_scale(load_image(EXAMPLES / "phone" / "PAD_PAT_1020_111_593.jpg")) is None


def test_real_ruler_against_hand_measurement():
    """ISIC_0012099: first to last 1 mm tick measured by hand on an enlarged crop, 435.1 px
    over 10 mm (docs/compare.md)."""
    found = find_ruler_scale(load_image(EXAMPLES / "images" / "ISIC_0012099.jpg"))
    assert found is not None
    assert abs(found.pitch_px / 43.51 - 1) <= 0.03
