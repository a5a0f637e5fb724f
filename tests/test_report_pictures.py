"""Report pictures: uncounted colour classes, the dashed maximum diameter, the scale bar."""

from __future__ import annotations

import numpy as np

from skinscreen.assess.color import COLOR_DISPLAY_RGB
from skinscreen.assess.features import LesionProperties
from skinscreen.io.image import load_image, load_mask
from skinscreen.report.overlays import (
    UNCOUNTED_RGB,
    View,
    axes_overlay,
    color_map_overlay,
    scale_bar,
)

from .conftest import EXAMPLES


def _props(spacing=None) -> LesionProperties:
    img = load_image(EXAMPLES / "images" / "ISIC_0012099.jpg")
    return LesionProperties(load_mask(EXAMPLES / "masks" / "ISIC_0012099.png"), img, spacing)


def _has(pic: np.ndarray, rgb) -> bool:
    return bool((pic == np.array(rgb, np.uint8)).all(axis=-1).any())


def test_colour_map_paints_only_counted_colours():
    props = _props()
    assert "red" not in props.colors_present and props.color_fractions["red"] > 0.005
    pic = color_map_overlay(props.image, props)
    assert not _has(pic, COLOR_DISPLAY_RGB["red"])  # a thin band below 5% is not "red"
    assert _has(pic, UNCOUNTED_RGB)
    for c in props.colors_present:
        assert _has(pic, COLOR_DISPLAY_RGB[c])


def test_scale_bar_is_a_round_length_in_mm_or_px():
    out = np.full((400, 800, 3), 128, np.uint8)
    scale_bar(out, View(0, 0, 400, 200, 2.0), mm_per_pixel=0.02)  # 100 px per mm on the picture
    row = (out[:, :, 0] == 0) & (out[:, :, 1] == 0)
    widths = row.sum(axis=1)
    assert 199 <= widths.max() <= 206  # 2 mm (+ tick marks): the longest round length that fits
    blank = np.full((400, 800, 3), 128, np.uint8)
    scale_bar(blank, View(0, 0, 400, 200, 2.0), mm_per_pixel=None)
    assert 199 <= ((blank[:, :, 0] == 0) & (blank[:, :, 1] == 0)).sum(axis=1).max() <= 206  # 100 px


def test_axes_picture_keeps_the_major_axis_visible_under_the_diameter():
    from skinscreen.report.overlays import DIAMETER_RGB, MAJOR_RGB

    pic = axes_overlay(_props(0.0229).image, _props(0.0229))
    assert _has(pic, MAJOR_RGB) and _has(pic, DIAMETER_RGB)
