"""Report schema, JSON keys, overlays and the self-contained HTML page."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest

from skinscreen import DISCLAIMER
from skinscreen.assess.scale import resolve_scale
from skinscreen.io.image import load_image, load_mask
from skinscreen.report.build import assess_image, flat_row
from skinscreen.report.html import render_html, report_pictures
from skinscreen.report.overlays import full_view, lesion_view
from skinscreen.report.schema import SCHEMA_VERSION, LesionReport, json_schema_text

from .conftest import ROOT

REQUIRED_KEYS = (
    "area_mm2",
    "diameter_max_mm",
    "perimeter_mm",
    "asymmetry",
    "border",
    "colors",
    "ita_deg",
    "skin_tone",
    "quality",
    "warnings",
    "schema_version",
    "disclaimer",
)


@pytest.fixture(scope="module")
def melanoma(sample_pairs):
    img, mask = next(p for p in sample_pairs if p[0].stem == "ISIC_0012099")
    return load_image(img), load_mask(mask)


@pytest.fixture(scope="module")
def assessed(melanoma):
    image, mask = melanoma
    prob = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 5)
    return assess_image(
        image,
        mask,
        probability=prob,
        scale=resolve_scale(0.0125, None, image.shape[:2]),
        image_name="ISIC_0012099.jpg",
    )


def test_published_json_schema_is_up_to_date():
    committed = (ROOT / "docs" / "report.schema.json").read_text()
    assert committed == json_schema_text(), (
        "docs/report.schema.json is stale: python -m skinscreen.report.schema > docs/report.schema.json"
    )


def test_report_json_has_the_public_keys(assessed):
    d = json.loads(assessed.report.model_dump_json())
    for key in REQUIRED_KEYS:
        assert key in d, key
    assert d["schema_version"] == SCHEMA_VERSION and d["disclaimer"] == DISCLAIMER
    assert d["area_mm2"] == pytest.approx(d["area_px"] * 0.0125**2, rel=1e-3)
    assert d["diameter_max_mm"] == pytest.approx(d["diameter_max_px"] * 0.0125, rel=1e-3)
    assert len(d["border"]["octant_edge_width"]) == 8
    assert d["asymmetry"]["axes"][0]["axis"] == "major"
    assert d["skin_tone"] == "very light"
    assert any("Total Dermoscopy Score" in n for n in d["not_assessed"])
    assert "tds" not in json.dumps(d).lower().replace("total dermoscopy score (tds)", "")
    # round trip through the schema
    assert LesionReport.model_validate(d) == assessed.report


def test_mm_fields_are_null_without_scale(melanoma):
    image, mask = melanoma
    d = assess_image(image, mask).report.model_dump(mode="json")
    for key in ("area_mm2", "diameter_max_mm", "perimeter_mm", "diameter_equivalent_mm"):
        assert d[key] is None
    assert d["diameter_over_6mm"] is None
    assert any("No scale" in w for w in d["warnings"])


def test_color_constancy_changes_only_colour(melanoma):
    image, mask = melanoma
    tinted = np.clip(image * np.array([1.0, 0.85, 0.7]), 0, 255).astype(np.uint8)
    plain = assess_image(tinted, mask).report
    corrected = assess_image(tinted, mask, color_constancy=True).report
    assert corrected.color_constancy and not plain.color_constancy
    assert corrected.area_px == plain.area_px
    assert [a.shape_index for a in corrected.asymmetry.axes] == [
        a.shape_index for a in plain.asymmetry.axes
    ]
    assert corrected.colors.skin_lab != plain.colors.skin_lab


def test_flat_row_for_the_csv(assessed):
    row = flat_row(assessed.report)
    assert row["image"] == "ISIC_0012099.jpg"
    assert row["diameter_max_mm"] == assessed.report.diameter_max_mm
    assert all(not isinstance(v, (list, dict)) for v in row.values())


def test_pictures_and_views(assessed, melanoma):
    image, mask = melanoma
    pics = report_pictures(assessed)
    assert list(pics) == ["overlay", "axes", "heatmap", "colors"]
    zoom = lesion_view(mask)
    w, h = zoom.size
    assert max(w, h) == 900
    for name in ("axes", "heatmap", "colors"):
        pic = pics[name][0]
        assert pic.dtype == np.uint8 and pic.shape[1] == w and pic.shape[0] > h  # legend below
    assert pics["overlay"][0].shape[:2] == (image.shape[0], image.shape[1])
    assert full_view(mask.shape).scale == 1.0
    # the heatmap is the photo where the probability is ~0 and changed over the lesion
    heat = pics["heatmap"][0][:h]
    photo = zoom.image(image)
    assert np.abs(heat[:5, :5].astype(int) - photo[:5, :5]).max() <= 2
    m = zoom.labels(mask)
    assert np.abs(heat[m].astype(int) - photo[m]).mean() > 20


def test_html_is_self_contained_and_says_it_is_not_a_diagnosis(assessed):
    page = render_html(assessed.report, report_pictures(assessed))
    assert page.count(DISCLAIMER) == 2
    assert page.count('src="data:image/jpeg;base64,') == 4
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script" not in page
    assert "@media print" in page
    assert "Largest diameter" in page and "mm" in page
    assert "cannot be measured from an outline" in page
