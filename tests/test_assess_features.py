"""Lesion features against analytic values on drawn shapes, and on the expert masks."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from skimage import draw
from skimage.color import lab2rgb

from skinscreen.assess import color as col
from skinscreen.assess.features import (
    ASYMMETRY_THRESHOLD,
    FEATURE_NAMES,
    LesionProperties,
    lesion_table,
)
from skinscreen.assess.skintone import ita_category, ita_deg
from skinscreen.errors import SkinscreenError
from skinscreen.io.image import load_image, load_mask

from .conftest import shared_dir

H = W = 480


def disc(r: float = 100, c: tuple[float, float] = (240, 240)) -> np.ndarray:
    m = np.zeros((H, W), bool)
    rr, cc = draw.disk(c, r, shape=m.shape)
    m[rr, cc] = True
    return m


def ellipse(a: float = 160, b: float = 70, rotation: float = 0.3) -> np.ndarray:
    m = np.zeros((H, W), bool)
    rr, cc = draw.ellipse(240, 240, b, a, rotation=rotation, shape=m.shape)
    m[rr, cc] = True
    return m


def polygon_mask(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    m = np.zeros((H, W), bool)
    rr, cc = draw.polygon(ys, xs, m.shape)
    m[rr, cc] = True
    return m


def star(n: int = 5, r_out: float = 170, r_in: float = 70):
    t = np.arange(2 * n) * np.pi / n
    r = np.where(np.arange(2 * n) % 2 == 0, r_out, r_in)
    return 240 + r * np.cos(t), 240 + r * np.sin(t)


def shoelace(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float]:
    area = 0.5 * abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1)))
    perim = float(np.sum(np.hypot(np.diff(np.r_[xs, xs[0]]), np.diff(np.r_[ys, ys[0]]))))
    return float(area), perim


#: Irregular blobs: a main disc with lopsided lobes off both principal axes, (radius, (row, col)).
BLOBS = (
    [(90, (240, 200)), (60, (170, 290)), (35, (330, 290))],
    [(100, (250, 220)), (55, (150, 300)), (45, (300, 340)), (30, (340, 160))],
    [(80, (240, 190)), (65, (180, 300)), (30, (320, 240)), (25, (260, 110))],
)


def blob(i: int = 0) -> np.ndarray:
    """An irregular, lopsided blob (union of discs, see :data:`BLOBS`)."""
    m = np.zeros((H, W), bool)
    for r, c in BLOBS[i]:
        m |= disc(r, c)
    return m


def rgb(lab) -> np.ndarray:
    """One CIELAB colour -> uint8 sRGB (3,)."""
    return np.clip(np.round(lab2rgb(np.array(lab, float)[None, None])[0, 0] * 255), 0, 255).astype(
        np.uint8
    )


SKIN_LAB = (70.0, 12.0, 18.0)


def painted(mask: np.ndarray, lesion_lab=col.COLOR_PROTOTYPES_LAB["dark_brown"]) -> np.ndarray:
    img = np.empty((*mask.shape, 3), np.uint8)
    img[:] = rgb(SKIN_LAB)
    img[mask] = rgb(lesion_lab)
    return img


# -- size -----------------------------------------------------------------------------------------
def test_disc_size_within_tight_tolerances():
    r = 100
    p = LesionProperties(disc(r), spacing=0.05)
    assert p.area_px == pytest.approx(math.pi * r * r, rel=0.01)
    assert p.diameter_max_px == pytest.approx(2 * r, rel=0.02)
    assert p.diameter_equivalent_px == pytest.approx(2 * r, rel=0.01)
    assert p.perimeter_px == pytest.approx(2 * math.pi * r, rel=0.01)
    assert p.compactness == pytest.approx(1.0, abs=0.03)
    assert p.solidity == pytest.approx(1.0, abs=0.01)
    # mm fields follow the spacing
    assert p.diameter_max_mm == pytest.approx(p.diameter_max_px * 0.05)
    assert p.area_mm2 == pytest.approx(p.area_px * 0.05**2)
    assert p.perimeter_mm == pytest.approx(p.perimeter_px * 0.05)
    assert p.diameter_over_6mm is True  # 200 px * 0.05 = 10 mm
    assert LesionProperties(disc(r), spacing=0.02).diameter_over_6mm is False  # 4 mm


def test_no_scale_means_no_mm_fields():
    p = LesionProperties(disc())
    assert p.area_mm2 is None and p.perimeter_mm is None
    assert p.diameter_max_mm is None and p.diameter_equivalent_mm is None
    assert p.diameter_over_6mm is None


@pytest.mark.parametrize("rotation", [0.0, 0.3, 1.1])
def test_ellipse_axes_diameter_and_perimeter(rotation):
    a, b = 160, 70
    p = LesionProperties(ellipse(a, b, rotation))
    h = ((a - b) / (a + b)) ** 2
    ramanujan = math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))
    assert p.area_px == pytest.approx(math.pi * a * b, rel=0.01)
    assert p.perimeter_px == pytest.approx(ramanujan, rel=0.01)
    assert p.diameter_max_px == pytest.approx(2 * a, rel=0.02)
    assert p.axis_major_length_px == pytest.approx(2 * a, rel=0.02)
    assert p.axis_minor_length_px == pytest.approx(2 * b, rel=0.03)
    # skimage's ellipse rotation is counter-clockwise on screen, like our angles
    expected = math.degrees(rotation) % 180
    assert (
        min(abs(p.axis_major_angle_deg - expected), 180 - abs(p.axis_major_angle_deg - expected))
        < 1.0
    )
    assert p.asymmetry_major < 0.02 and p.asymmetry_minor < 0.02
    assert p.asymmetry_count == 0
    assert p.compactness > 1.1  # an ellipse is less compact than a disc


def test_square_perimeter_diagonal_compactness():
    s = 200
    m = np.zeros((H, W), bool)
    m[100 : 100 + s, 100 : 100 + s] = True
    p = LesionProperties(m)
    assert p.area_px == s * s
    assert p.perimeter_px == pytest.approx(4 * s, rel=0.01)
    assert p.diameter_max_px == pytest.approx(s * math.sqrt(2), rel=0.01)
    assert p.compactness == pytest.approx(4 / math.pi, rel=0.02)
    assert p.solidity == pytest.approx(1.0, abs=1e-6)
    assert p.asymmetry_count == 0


def test_rotated_square_perimeter():
    s, c = 200, 240
    t = math.radians(30) + np.arange(4) * np.pi / 2 + np.pi / 4
    m = polygon_mask(c + s / math.sqrt(2) * np.cos(t), c + s / math.sqrt(2) * np.sin(t))
    assert LesionProperties(m).perimeter_px == pytest.approx(4 * s, rel=0.01)


def test_star_area_perimeter_solidity():
    xs, ys = star()
    area, perim = shoelace(xs, ys)
    p = LesionProperties(polygon_mask(xs, ys))
    assert p.area_px == pytest.approx(area, rel=0.01)
    assert p.perimeter_px == pytest.approx(perim, rel=0.02)
    assert p.compactness == pytest.approx(perim**2 / (4 * math.pi * area), rel=0.04)
    # convex hull of a star is the pentagon through its outer points
    hx, hy = xs[::2], ys[::2]
    assert p.solidity == pytest.approx(area / shoelace(hx, hy)[0], rel=0.02)
    assert p.diameter_max_px == pytest.approx(
        max(math.dist((hx[i], hy[i]), (hx[j], hy[j])) for i in range(5) for j in range(5)),
        rel=0.01,
    )


def test_two_lobed_shape_is_asymmetric_about_one_axis():
    m = disc(90, (240, 170)) | disc(50, (240, 300))
    p = LesionProperties(m)
    # the line through both centres is the major axis: a mirror about it is exact
    assert p.axis_major_angle_deg == pytest.approx(
        0.0, abs=1.0
    ) or p.axis_major_angle_deg == pytest.approx(180.0, abs=1.0)
    assert p.asymmetry_major < 0.01
    assert p.asymmetry_minor > 0.15
    assert p.asymmetry_count == 1
    assert p.solidity < 0.97


def test_disc_is_symmetric_and_blob_is_not():
    assert LesionProperties(disc()).asymmetry_count == 0
    for i in range(len(BLOBS)):
        p = LesionProperties(blob(i))
        assert p.asymmetry_count == 2, (i, p.asymmetry_major, p.asymmetry_minor)
        assert p.asymmetry_major > ASYMMETRY_THRESHOLD and p.asymmetry_minor > ASYMMETRY_THRESHOLD
        assert p.compactness > 1.5 and p.solidity < 0.9


def test_features_do_not_depend_on_position():
    a = LesionProperties(blob(1))
    b = LesionProperties(np.roll(blob(1), (17, -23), axis=(0, 1)))
    for name in ("area_px", "perimeter_px", "diameter_max_px", "asymmetry_major", "compactness"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-6), name


# -- border ---------------------------------------------------------------------------------------
def test_sharp_edge_is_abrupt_in_all_octants_and_blurred_in_none():
    m = disc()
    sharp = LesionProperties(m, painted(m))
    assert sharp.border_abrupt_count == 8
    assert max(sharp.border_edge_width) < 0.05
    # Gaussian blur sigma = 15 px on R = 100 px: logistic 10-90 % width ~ 2.56 sigma / R ~ 0.38-0.42
    blurred = LesionProperties(m, cv2.GaussianBlur(painted(m), (0, 0), 15))
    assert blurred.border_abrupt_count == 0
    assert all(0.3 < w < 0.5 for w in blurred.border_edge_width)


def test_half_blurred_border_counts_four_octants():
    m = disc()
    img = painted(m)
    img[:, 240:] = cv2.GaussianBlur(img, (0, 0), 15)[:, 240:]  # right half (octants 0, 1, 6, 7)
    p = LesionProperties(m, img)
    w = p.border_edge_width
    assert p.border_abrupt_count == 4
    assert all(w[k] > 0.3 for k in (0, 1, 6, 7)) and all(w[k] < 0.05 for k in (2, 3, 4, 5))


def test_border_widths_are_none_without_contrast():
    m = disc()
    flat = np.full((H, W, 3), 180, np.uint8)
    p = LesionProperties(m, flat)
    assert p.border_edge_width == [None] * 8 and p.border_abrupt_count == 0


# -- colour ---------------------------------------------------------------------------------------
def test_quadrant_colours_are_found_exactly():
    m = disc()
    img = painted(m)
    ys, xs = np.nonzero(m)
    names = ["black", "blue_gray", "red", "white"]
    for name, (top, left) in zip(names, [(1, 1), (1, 0), (0, 1), (0, 0)], strict=True):
        sel = ((ys < 240) == bool(top)) & ((xs < 240) == bool(left))
        img[ys[sel], xs[sel]] = rgb(col.COLOR_PROTOTYPES_LAB[name])
    p = LesionProperties(m, img)
    assert set(p.colors_present) == set(names) and p.color_count == 4
    for name in names:
        assert p.color_fractions[name] == pytest.approx(0.25, abs=0.02)
    assert p.color_variegation > 20


@pytest.mark.parametrize("name", col.DERMOSCOPIC_COLORS)
def test_each_prototype_is_its_own_colour(name):
    m = disc()
    p = LesionProperties(m, painted(m, col.COLOR_PROTOTYPES_LAB[name]))
    assert p.colors_present == [name]
    assert p.color_variegation < 1.0


def test_skin_coloured_lesion_pixels_are_not_a_dermoscopic_colour():
    m = disc()
    p = LesionProperties(m, painted(m, SKIN_LAB))
    assert p.colors_present == [] and p.color_fractions["skin"] > 0.99


def test_color_asymmetry_between_halves():
    m = ellipse(160, 70, 0.0)
    img = painted(m)
    ys, xs = np.nonzero(m)
    left = xs < 240
    img[ys[left], xs[left]] = rgb(col.COLOR_PROTOTYPES_LAB["light_brown"])
    p = LesionProperties(m, img)
    assert p.color_asymmetry_major < 0.5  # top and bottom halves hold the same mix
    assert p.color_asymmetry_minor > 15  # left vs right: light vs dark brown
    assert p.color_asymmetry_count == 1
    assert p.asymmetry_count == 0  # the shape itself is symmetric


def test_color_class_map_matches_fractions():
    m = blob(2)
    img = painted(m)
    img[m & (np.arange(W)[None, :] < 240)] = rgb(col.COLOR_PROTOTYPES_LAB["black"])
    p = LesionProperties(m, img)
    cmap = p.color_class_map()
    assert cmap.shape == m.shape and (cmap[~m] == -1).all() and (cmap[m] >= 0).all()
    share = np.mean(cmap[m] == col.COLOR_CLASSES.index("black"))
    assert share == pytest.approx(p.color_fractions["black"], abs=0.02)


def test_shades_of_gray_removes_a_cast():
    rng = np.random.default_rng(0)
    scene = rng.integers(40, 220, size=(64, 64, 3)).astype(np.float32)
    cast = np.clip(scene * np.array([1.0, 0.8, 0.55]), 0, 255).astype(np.uint8)
    before = col.color_cast_deg(col.illuminant_shades_of_gray(cast))
    after = col.color_cast_deg(col.illuminant_shades_of_gray(col.shades_of_gray(cast)))
    assert before > 10 and after < 1.5


# -- skin tone ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "lab,category",
    [
        ((80, 5, 10), "very light"),
        ((65, 8, 15), "light"),
        ((60, 10, 15), "intermediate"),
        ((55, 10, 18), "tan"),
        ((45, 10, 18), "brown"),
        ((30, 8, 12), "dark"),
    ],
)
def test_ita_formula_and_categories(lab, category):
    expected = math.degrees(math.atan((lab[0] - 50) / lab[2]))
    assert ita_deg(np.array(lab)) == pytest.approx(expected)
    assert ita_category(expected) == category


def test_ita_of_the_skin_ring_matches_the_painted_skin():
    m = disc()
    p = LesionProperties(m, painted(m))
    expected = math.degrees(math.atan((SKIN_LAB[0] - 50) / SKIN_LAB[2]))
    assert p.ita_deg == pytest.approx(expected, abs=1.0)
    assert p.skin_tone == ita_category(expected)
    assert ita_deg(np.array([70.0, 0.0, -3.0])) is None  # blue-grey "skin": not computed


# -- API and errors -------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors():
    with pytest.raises(SkinscreenError, match="empty"):
        LesionProperties(np.zeros((10, 10), bool))
    with pytest.raises(SkinscreenError, match="2-D"):
        LesionProperties(np.ones((4, 4, 3), bool))
    with pytest.raises(SkinscreenError, match="spacing"):
        LesionProperties(disc(), spacing=0)
    with pytest.raises(SkinscreenError, match="match"):
        LesionProperties(disc(), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(SkinscreenError, match="image="):
        _ = LesionProperties(disc()).colors_present


def test_to_dict_and_table_hold_every_feature():
    m = disc()
    props = [LesionProperties(m, painted(m)), LesionProperties(blob(0), painted(blob(0)))]
    table = lesion_table(props)
    assert list(table) == list(FEATURE_NAMES)
    assert all(len(v) == 2 for v in table.values())
    assert table["asymmetry_count"] == [0, 2]


# -- real photos ----------------------------------------------------------------------------------
def test_expert_masks_of_the_samples(sample_pairs):
    for img_path, mask_path in sample_pairs:
        image, mask = load_image(img_path), load_mask(mask_path)
        p = LesionProperties(mask, image)
        assert p.compactness >= 1.0 and 0.5 < p.solidity <= 1.0
        assert 0 <= p.asymmetry_major < 0.5 and 0 <= p.asymmetry_minor < 0.5
        assert p.diameter_max_px >= p.diameter_equivalent_px
        assert 1 <= p.color_count <= 6
        assert p.ita_deg is not None and -90 < p.ita_deg < 90
        assert sum(w is not None for w in p.border_edge_width) >= 6


def test_melanoma_sample_figures(sample_pairs):
    """ISIC_0012099 (melanoma): figures pinned to catch silent changes of a definition."""
    img_path, mask_path = next(pair for pair in sample_pairs if pair[0].stem == "ISIC_0012099")
    p = LesionProperties(load_mask(mask_path), load_image(img_path))
    assert p.area_px == 10280
    assert p.diameter_max_px == pytest.approx(145.1, abs=0.5)
    assert p.compactness == pytest.approx(1.56, abs=0.02)
    assert {"light_brown", "dark_brown"} <= set(p.colors_present)
    assert p.skin_tone == "very light"


def test_dev_expert_masks_all_measurable():
    root = shared_dir("lesions-dev")
    for mask_path in sorted((root / "masks").glob("*.png"))[::7]:
        image = load_image(root / "images" / f"{mask_path.stem}.jpg")
        p = LesionProperties(load_mask(mask_path), image)
        d = p.to_dict()
        assert d["area_px"] > 0 and d["compactness"] >= 0.95
        assert 0 <= d["asymmetry_count"] <= 2 and 0 <= d["border_abrupt_count"] <= 8
