"""Perturbations, skin-tone stratification and report building of the robustness suite (no model)."""

from __future__ import annotations

import csv
import io

import cv2
import numpy as np
import pytest

from skinscreen.errors import SkinscreenError
from skinscreen.evaluate import perturbations as P
from skinscreen.evaluate import robustness as R


@pytest.fixture()
def photo_and_mask(sample_pairs):
    from skinscreen.io.image import load_image, load_mask

    img, msk = sample_pairs[0]
    return load_image(img), load_mask(msk)


def test_exposure_and_gamma_of_one_are_identity(photo_and_mask):
    img, _ = photo_and_mask
    assert np.abs(P.exposure(img, 1.0).astype(int) - img).max() <= 1
    assert np.abs(P.gamma(img, 1.0).astype(int) - img).max() <= 1


def test_exposure_direction(photo_and_mask):
    img, _ = photo_and_mask
    assert P.exposure(img, 0.5).mean() < img.mean() < P.exposure(img, 2.0).mean()
    assert P.gamma(img, 1.6).mean() < img.mean() < P.gamma(img, 0.6).mean()


def test_colour_casts_shift_red_blue_balance(photo_and_mask):
    img, _ = photo_and_mask
    rb = img[..., 0].mean() / img[..., 2].mean()
    warm = P.colour_cast(img, P.WARM_GAINS)
    cool = P.colour_cast(img, P.COOL_GAINS)
    assert warm[..., 0].mean() / warm[..., 2].mean() > rb * 1.3
    assert cool[..., 0].mean() / cool[..., 2].mean() < rb * 0.9


def test_blur_and_jpeg_keep_shape_and_lose_detail(photo_and_mask):
    img, _ = photo_and_mask

    def sharp(x):
        return cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()

    b = P.blur(img, 0.01)
    j = P.jpeg(img, 10)
    assert b.shape == img.shape == j.shape and b.dtype == np.uint8
    assert sharp(b) < 0.2 * sharp(img)
    assert 0 < np.abs(j.astype(int) - img).mean() < 20


def test_geometry_moves_the_mask_with_the_photo(photo_and_mask):
    img, mask = photo_and_mask
    r_img, r_mask = P.rotate(img, mask, 90)
    assert r_img.shape[:2] == r_mask.shape == (img.shape[1], img.shape[0])
    assert np.array_equal(np.rot90(mask), r_mask)
    f_img, f_mask = P.flip(img, mask, 1)
    assert np.array_equal(P.flip(f_img, f_mask, 1)[1], mask)
    assert np.array_equal(f_img[:, ::-1], img)
    t_img, t_mask = P.rotate(img, mask, 15)
    assert t_img.shape == img.shape and t_mask.shape == mask.shape
    # area is kept up to the resampling of the border
    assert abs(int(t_mask.sum()) - int(mask.sum())) < 0.02 * mask.sum()


def test_every_condition_applies(photo_and_mask):
    img, mask = photo_and_mask
    small = cv2.resize(img, (160, 106), interpolation=cv2.INTER_AREA)
    m = cv2.resize(mask.astype(np.uint8), (160, 106), interpolation=cv2.INTER_NEAREST) > 0
    for c in P.CONDITIONS:
        out_img, out_mask = c.apply(small, m)
        assert out_img.dtype == np.uint8 and out_img.ndim == 3
        assert out_mask.shape == out_img.shape[:2] and out_mask.any()
        assert c.changes_image == (c.group not in ("reference", "prompt"))


def test_select_conditions():
    assert [c.name for c in P.select(None)] == [c.name for c in P.CONDITIONS]
    assert [c.name for c in P.select("jitter-10, blur-0.5")] == [
        "original",
        "jitter-10",
        "blur-0.5",
    ]
    with pytest.raises(SkinscreenError, match="unknown condition"):
        P.select("blur-0.5,sepia")


@pytest.mark.parametrize(
    ("lab", "tone"),
    [((80.0, 8.0, 15.0), "very light"), ((55.0, 12.0, 20.0), "tan"), ((30.0, 10.0, 15.0), "dark")],
)
def test_skin_tone_of_a_uniform_skin_ring(lab, tone):
    """A photo of one CIELAB colour with a dark lesion in the middle: ITA of that colour."""
    px = np.array(lab, np.float32).reshape(1, 1, 3)
    rgb = np.clip(cv2.cvtColor(px, cv2.COLOR_LAB2RGB) * 255 + 0.5, 0, 255).astype(np.uint8)
    img = np.tile(rgb, (200, 200, 1))
    mask = np.zeros((200, 200), bool)
    mask[80:120, 80:120] = True
    img[mask] = (40, 20, 10)
    ita, cat = R.skin_tone(img, mask)
    expected = np.degrees(np.arctan((lab[0] - 50) / lab[2]))
    assert cat == tone
    assert abs(ita - expected) < 3.0


def test_source_from_id_and_metadata():
    assert R.source_of("ISIC_0012099") == "ISIC"
    assert R.source_of("PAD_PAT_1_2_3") == "PAD-UFES-20"
    assert R.source_of("WL_dermis_notmelanoma_8") == "DermIS"
    assert R.source_of("x", {"x": "Somewhere"}) == "Somewhere"


def _row(image_id, cond, cc, d, change, warned, tone="light"):
    return {
        "id": image_id,
        "source": "ISIC",
        "ita": 50.0,
        "skin_tone": tone,
        "prompt": "gt-box",
        "condition": cond,
        "group": "reference" if cond == "original" else "blur",
        "colour_constancy": cc,
        "dice": d,
        "jaccard": d / (2 - d),
        "threshold_jaccard": d / (2 - d),
        "dice_change": change,
        "quality_warnings": "blur" if warned else "",
        "warned": warned,
        "iou_prediction": 0.9,
        "latency_ms": 1.0,
    }


def test_summary_counts_unwarned_drops_and_report_files():
    rows = [
        _row("a", "original", False, 0.90, 0.0, False),
        _row("b", "original", False, 0.80, 0.0, False, tone="dark"),
        _row("a", "blur-1.0", False, 0.70, -0.20, True),
        _row("b", "blur-1.0", False, 0.70, -0.10, False, tone="dark"),
    ]
    conds = P.select("blur-1.0")
    by = {r["condition"]: r for r in R.summarise(rows, ("condition",))}
    assert by["blur-1.0"]["dropped"] == 1.0
    assert by["blur-1.0"]["dropped_unwarned"] == 1
    assert by["blur-1.0"]["dice_change"] == pytest.approx(-0.15)
    files = R.build_report(R.RobustnessResult(rows=rows), conds, title="unit", model="m")
    assert set(files) == {
        "robustness_per_image.csv",
        "robustness_summary.csv",
        "robustness.md",
        "dice_by_condition.png",
        "dice_by_skin_tone.png",
    }
    per_image = list(csv.DictReader(io.StringIO(files["robustness_per_image.csv"].decode())))
    assert len(per_image) == 4
    md = files["robustness.md"].decode()
    assert "| blur-1.0 | blur | no | 2 | 0.700 | -0.150 |" in md
    png = cv2.imdecode(np.frombuffer(files["dice_by_skin_tone.png"], np.uint8), cv2.IMREAD_COLOR)
    assert png is not None and png.shape[1] == 760
