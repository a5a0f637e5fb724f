"""Self-contained HTML report: pictures embedded as data URIs, no scripts, no network, prints well.

The page shows the disclaimer first and last, the quality warnings, the pictures (outline,
axes and diameter, heatmap, colour map) and every measurement with a plain-language explanation.
"""

from __future__ import annotations

import base64
import html
import io
from importlib import resources
from string import Template

import numpy as np
from PIL import Image

from skinscreen._version import __version__
from skinscreen.report.overlays import (
    axes_overlay,
    color_map_overlay,
    contour_overlay,
    full_view,
    heatmap_overlay,
    lesion_view,
)
from skinscreen.report.schema import LesionReport

#: Longer side of the pictures embedded in the HTML (the PNG files keep full size).
EMBED_SIDE = 1000


def _outline_source(seg) -> str:
    """'model litemedsam (onnx-int8, onnxruntime), box check: box-robust decoder used' or
    'mask file'."""
    if seg.source != "model":
        return "mask file"
    parts = [p for p in (seg.variant, seg.engine) if p]
    text = f"model {seg.model or ''}" + (f" ({', '.join(parts)})" if parts else "")
    check = seg.box_check
    if check:
        used = "box-robust" in str(check.get("decoder", ""))
        text += (
            f"; box check: the outline of {check.get('check_model')}'s box-robust decoder "
            f"(the two decoders agreed at Dice {check.get('agreement', 0):.2f})"
            if used
            else f"; box check: both decoders agreed (Dice {check.get('agreement', 0):.2f})"
        )
    return text


def _weights_text(seg) -> str:
    if not seg.weights:
        return "n/a (outline from a mask file)" if seg.source != "model" else "not recorded"
    return "; ".join(
        f"{w.role} {w.name}: {w.licence} ("
        + ("commercial use allowed" if w.commercial_use else "non-commercial use only")
        + ")"
        for w in seg.weights
    )


def report_pictures(assessment) -> dict[str, tuple[np.ndarray, str]]:
    """``{name: ((h, w, 3) uint8 RGB picture, caption)}`` for an assessment.

    ``overlay``: the whole photo with the outline; ``axes``: zoom with the principal axes and the
    maximum diameter; ``heatmap``: the model's probability (only when there is one); ``colors``:
    the colour-class map.
    """
    a = assessment
    props, photo = a.props, a.photo
    zoom = lesion_view(props.mask)
    pics = {
        "overlay": (
            contour_overlay(photo, props.mask, full_view(props.mask.shape)),
            "The photo with the lesion outline.",
        ),
        "axes": (
            axes_overlay(photo, props, zoom),
            "Zoom: the two main axes used for asymmetry and the largest diameter.",
        ),
    }
    if a.probability is not None:
        pics["heatmap"] = (
            heatmap_overlay(photo, a.probability, props.mask, zoom),
            "Zoom: how sure the model is that each pixel belongs to the lesion (brighter = surer).",
        )
    pics["colors"] = (
        color_map_overlay(a.image, props, zoom),
        "Zoom: each part of the lesion coloured by the nearest dermoscopic colour"
        + (" (after colour-constancy correction)." if a.report.color_constancy else "."),
    )
    return pics


def _data_uri(picture: np.ndarray) -> str:
    h, w = picture.shape[:2]
    f = min(1.0, EMBED_SIDE / max(h, w))
    im = Image.fromarray(picture)
    if f < 1.0:
        im = im.resize((max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=88, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(v: float | None, nd: int = 1, unit: str = "") -> str:
    return "n/a" if v is None else f"{v:.{nd}f}{unit}"


def _size(px: float | None, mm: float | None, unit_px: str, unit_mm: str, nd_mm: int = 1) -> str:
    if mm is not None:
        return f"{mm:.{nd_mm}f} {unit_mm} ({px:.0f} {unit_px})"
    return f"{px:.0f} {unit_px}"


def _rows(rows: list[tuple[str, str, str]]) -> str:
    return "\n".join(
        f'<tr><th>{html.escape(a)}</th><td class="v">{html.escape(b)}</td>'
        f'<td class="e">{html.escape(c)}</td></tr>'
        for a, b, c in rows
    )


def _section(title: str, rows: list[tuple[str, str, str]]) -> str:
    return f"<section>\n<h2>{html.escape(title)}</h2>\n<table>\n{_rows(rows)}\n</table>\n</section>"


def _sections(r: LesionReport) -> str:
    d6 = r.diameter_over_6mm
    d6_text = (
        "unknown without a scale"
        if d6 is None
        else ("yes, larger than 6 mm" if d6 else "no, 6 mm or less")
    )
    ax = r.asymmetry.axes
    colors = ", ".join(
        f"{c.replace('_', ' ')} ({r.colors.fractions[c]:.0%})" for c in r.colors.present
    )
    q = r.quality
    seg = r.segmentation
    out = [
        _section(
            "Size",
            [
                (
                    "Area",
                    _size(r.area_px, r.area_mm2, "px", "mm\u00b2"),
                    "Surface inside the outline.",
                ),
                (
                    "Largest diameter",
                    _size(r.diameter_max_px, r.diameter_max_mm, "px", "mm"),
                    "The longest straight line across the lesion (magenta in the picture). "
                    f"The clinical ABCDE rule's D asks whether it exceeds 6 mm: {d6_text}.",
                ),
                (
                    "Equivalent diameter",
                    _size(r.diameter_equivalent_px, r.diameter_equivalent_mm, "px", "mm"),
                    "Diameter of a circle with the same area.",
                ),
                (
                    "Perimeter",
                    _size(r.perimeter_px, r.perimeter_mm, "px", "mm"),
                    "Length of the outline.",
                ),
            ],
        ),
        _section(
            "Asymmetry (A)",
            [
                (
                    "Shape asymmetry",
                    f"{r.asymmetry.asymmetric_axes} of 2 axes "
                    f"({ax[0].shape_index:.0%} / {ax[1].shape_index:.0%})",
                    "The outline is mirrored about its two main axes (yellow and orange); the "
                    "percentage is the share of the area that does not overlap its mirror image. "
                    f"An axis counts as asymmetric above {r.asymmetry.shape_threshold:.0%}.",
                ),
                (
                    "Colour asymmetry",
                    f"{r.asymmetry.color_asymmetric_axes} of 2 axes "
                    f"(\u0394E {_fmt(ax[0].color_delta_e)} / {_fmt(ax[1].color_delta_e)})",
                    "Difference between the average colours of the two halves on either side of "
                    "each axis (CIEDE2000; about 2 is just noticeable). An axis counts above "
                    f"{r.asymmetry.color_threshold_delta_e:.0f}.",
                ),
            ],
        ),
        _section(
            "Border (B)",
            [
                (
                    "Abrupt border segments",
                    f"{r.border.abrupt_octants} of 8",
                    "The border is split into 8 pie segments; a segment counts as abrupt when "
                    "the change from lesion to skin happens within "
                    f"{r.border.abrupt_width_threshold:.0%} of the lesion's radius, as opposed to "
                    "fading out gradually. Segments at the photo's edge are not measured.",
                ),
                (
                    "Compactness",
                    f"{r.border.compactness:.2f}",
                    "Perimeter\u00b2 / (4\u03c0 \u00d7 area): 1 for a circle, larger for notched "
                    "or wavy borders.",
                ),
                (
                    "Solidity",
                    f"{r.border.solidity:.2f}",
                    "Area divided by the area of the tightest convex shape around the lesion: "
                    "below 1 when the border has indentations.",
                ),
            ],
        ),
        _section(
            "Colour (C)",
            [
                (
                    "Colours present",
                    f"{r.colors.count}: {colors}" if colors else "0",
                    "Each part of the lesion is matched to the nearest of the six colours used in "
                    "dermoscopy (white, red, light brown, dark brown, blue-grey, black) or to the "
                    "surrounding skin; a colour counts when it covers at least "
                    f"{r.colors.min_fraction:.0%} of the lesion. Light and camera change colours.",
                ),
                (
                    "Colour variegation",
                    f"{r.colors.variegation:.1f}",
                    "How much the colour varies inside the lesion (CIELAB standard deviation); "
                    "higher means more varied.",
                ),
            ],
        ),
        _section(
            "Skin tone",
            [
                (
                    "Individual Typology Angle",
                    "not measurable"
                    if r.ita_deg is None
                    else f"{r.ita_deg:.0f}\u00b0 ({r.skin_tone})",
                    "Measured on a ring of skin around the lesion. It depends on the light and "
                    "the camera; it is used to check that the tool works equally well across skin "
                    "tones, not to describe the person.",
                ),
            ],
        ),
        _section(
            "Photo quality",
            [
                (
                    "Sharpness",
                    f"{q.sharpness:.0f}",
                    "Detail around the lesion (variance of the Laplacian); low values mean blur.",
                ),
                (
                    "Exposure",
                    f"{q.overexposed_fraction:.0%} glare, {q.underexposed_fraction:.0%} dark",
                    "Share of clipped bright and dark pixels around the lesion.",
                ),
                (
                    "Colour cast",
                    f"{q.color_cast_deg:.0f}\u00b0",
                    "How far the photo's light is from neutral white (Shades-of-Gray estimate).",
                ),
                (
                    "Compression",
                    (
                        "unknown"
                        if q.jpeg_quality_estimate is None
                        else f"JPEG quality about {q.jpeg_quality_estimate:.0f}"
                        + (" (from the pixels)" if q.jpeg_quality_source == "pixels" else "")
                    )
                    + f", block edges {q.compression_blockiness:.2f}",
                    "How strongly the photo was JPEG-compressed (out of 100, from the file's "
                    "compression tables or its pixels; unknown: no strong compression found). "
                    "At 25 or below, block artefacts distort the border and colours. Block edges: "
                    "about 1 without visible 8 x 8 blocks.",
                ),
                (
                    "Framing",
                    ("touches the photo edge" if q.touching_border else "whole lesion in frame")
                    + (", too small" if q.too_small else ""),
                    "The whole lesion with a margin of skin is needed for size and asymmetry.",
                ),
            ],
        ),
        _section(
            "Outline",
            [
                (
                    "Source",
                    _outline_source(seg),
                    "The outline all measurements come from. Check it in the pictures: a wrong "
                    "outline gives wrong measurements.",
                ),
                (
                    "Weights and licences",
                    _weights_text(seg),
                    "Every set of weights that produced the outline, and whether its licence "
                    "allows commercial use. Weights learned from non-commercial photos are for "
                    "research use; --commercial-only runs without them.",
                ),
                (
                    "Box",
                    "n/a"
                    if seg.box is None
                    else f"{seg.box_source}: "
                    + ", ".join(f"{v:.0f}" for v in seg.box)
                    + (
                        f"; grown {seg.box_margin:.0%} per side to "
                        + ", ".join(f"{v:.0f}" for v in seg.box_used)
                        if seg.box_margin and seg.box_used is not None
                        else ""
                    ),
                    "The box (x0, y0, x1, y1 in photo pixels) the model was asked to outline in. "
                    "A drawn box is grown by a small margin on every side (--box-margin), "
                    "because a box drawn by hand often cuts the lesion's edge.",
                ),
                (
                    "Model's confidence",
                    _fmt(seg.iou_prediction, 2),
                    "The model's own estimate of its outline's overlap with the true one (0-1).",
                ),
            ]
            + _outline_quality_rows(r),
        ),
    ]
    return "\n".join(out)


def _outline_quality_rows(report: LesionReport) -> list[tuple[str, str, str]]:
    q = report.outline_quality
    if q is None:
        return []
    verdict = "CHECK THIS OUTLINE" if q.check_outline else "no sign of a wrong outline"
    drivers = ", ".join(d.signal.replace("_", " ") for d in q.drivers)
    return [
        (
            "Outline check",
            f"{verdict} (failure probability {q.p_failure:.0%}, predicted overlap "
            f"{q.predicted_jaccard:.0%})" + (f"; driven by {drivers}" if drivers else ""),
            "An estimate, learned on expert-outlined photos, of whether this outline is wrong "
            f"(overlap with an expert's below 65%); flagged at {q.threshold:.0%} or more. It "
            "can be wrong too: look at the outline yourself.",
        )
    ]


def render_html(report: LesionReport, pictures: dict[str, tuple[np.ndarray, str]]) -> str:
    """The report page as one self-contained HTML string (UTF-8)."""
    template = Template(
        resources.files("skinscreen.report").joinpath("templates/report.html").read_text("utf-8")
    )
    figures = "\n".join(
        f'<figure><img src="{_data_uri(pic)}" alt="{html.escape(name)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for name, (pic, caption) in pictures.items()
    )
    warnings = ""
    if report.warnings:
        items = "\n".join(f"<li>{html.escape(w)}</li>" for w in report.warnings)
        warnings = f'<div class="warnings"><strong>Warnings</strong><ul>\n{items}\n</ul></div>'
    s = report.scale
    scale_text = (
        "none (sizes in pixels)"
        if s.mm_per_pixel is None
        else f"{s.mm_per_pixel:.4g} mm/pixel ({s.source})"
    )
    return template.substitute(
        version=html.escape(__version__),
        schema_version=html.escape(report.schema_version),
        image_name=html.escape(report.image.name),
        image_size=f"{report.image.width}\u00d7{report.image.height} px",
        outline_source="model" if report.segmentation.source == "model" else "mask file",
        scale_text=html.escape(scale_text),
        disclaimer=html.escape(report.disclaimer),
        warnings_html=warnings,
        figures_html=figures,
        sections_html=_sections(report),
        not_assessed_html="\n".join(f"<li>{html.escape(n)}</li>" for n in report.not_assessed),
    )
