"""The change report as one self-contained HTML page (pictures embedded, no scripts, no network),
in the assessment report's style (:mod:`skinscreen.report.html`)."""

from __future__ import annotations

import html
import re
from importlib import resources

import cv2
import numpy as np

from skinscreen._version import __version__
from skinscreen.report.html import _data_uri, _fmt, _section
from skinscreen.report.overlays import _contours, _legend, _thickness, lesion_view

EARLIER_RGB = (255, 200, 0)
LATER_RGB = (0, 220, 200)
GROWN_RGB = (40, 200, 60)
SHRUNK_RGB = (230, 40, 200)


def _style() -> str:
    text = (resources.files("skinscreen.report") / "templates" / "report.html").read_text("utf-8")
    m = re.search(r"<style>.*?</style>", text, re.S)
    return m.group(0) if m else ""


def change_pictures(comparison) -> dict[str, tuple[np.ndarray, str]]:
    """``{name: ((h, w, 3) uint8 RGB, caption)}``: ``aligned`` (the earlier photo mapped onto the
    later one, side by side with it), ``contours`` (both outlines on the later photo) and
    ``growth`` (grown and shrunk parts)."""
    c = comparison
    later = c.later.photo
    me, ml = c.earlier_mask_in_later, c.later.props.mask
    view = lesion_view(me | ml, margin=0.6, side=700)
    left, right = view.image(c.earlier_photo_in_later), view.image(later)
    gap = np.full((left.shape[0], 8, 3), 255, np.uint8)
    aligned = np.hstack([left, gap, right])
    th = _thickness(right)
    cont = right.copy()
    for m, rgb in ((view.labels(me), EARLIER_RGB), (view.labels(ml), LATER_RGB)):
        cv2.drawContours(cont, _contours(m), -1, rgb, th, cv2.LINE_AA)
    cont = np.vstack(
        [cont, _legend(cont.shape[1], [(EARLIER_RGB, "earlier"), (LATER_RGB, "later")])]
    )
    e, l_ = view.labels(me), view.labels(ml)
    grow = (0.55 * right + 0.45 * 255).astype(np.uint8)
    for m, rgb in ((e & l_, (150, 150, 150)), (l_ & ~e, GROWN_RGB), (e & ~l_, SHRUNK_RGB)):
        grow[m] = (0.35 * grow[m] + 0.65 * np.array(rgb)).astype(np.uint8)
    grow = np.vstack(
        [
            grow,
            _legend(
                grow.shape[1],
                [((150, 150, 150), "both"), (GROWN_RGB, "new"), (SHRUNK_RGB, "gone")],
            ),
        ]
    )
    return {
        "aligned": (
            aligned,
            "Left: the earlier photo, aligned onto the later one. Right: the later photo.",
        ),
        "contours": (cont, "Both outlines on the later photo (yellow: earlier, cyan: later)."),
        "growth": (
            grow,
            "Growth map: green = lesion only in the later photo, magenta = only in the earlier.",
        ),
    }


def _pct(v: float) -> str:
    return f"{v:+.1%}"


def render_change_html(report, pictures: dict[str, tuple[np.ndarray, str]]) -> str:
    """The change report page as one HTML string (UTF-8)."""
    r, ch, nf, reg = report, report.change, report.noise_floor, report.registration
    mm = ch.area_mm2_delta is not None
    rows = [
        (
            "Area",
            _pct(ch.area_rel) + (f" ({ch.area_mm2_delta:+.2f} mm\u00b2)" if mm else ""),
            f"Surface inside the outline, later vs earlier, after alignment. Noise floor "
            f"\u00b1{nf.area_rel:.0%}.",
        ),
        (
            "Largest diameter",
            _pct(ch.diameter_max_rel) + (f" ({ch.diameter_max_mm_delta:+.2f} mm)" if mm else ""),
            f"The longest line across the lesion. Noise floor \u00b1{nf.diameter_max_rel:.0%}.",
        ),
        (
            "Equivalent diameter",
            _pct(ch.diameter_equivalent_rel),
            "Diameter of a circle with the lesion's area.",
        ),
        (
            "New / gone area",
            f"{ch.grown_fraction:.0%} / {ch.shrunk_fraction:.0%}",
            "Parts inside only the later (green) or only the earlier outline (magenta), as a "
            "share of the earlier lesion.",
        ),
        (
            "Shape asymmetry",
            f"{ch.asymmetry_delta:+.3f}",
            f"Change of the mirror-overlap asymmetry index (0-1). Noise floor \u00b1{nf.asymmetry}.",
        ),
        (
            "Border (compactness)",
            f"{ch.border_delta:+.3f}",
            f"Change of perimeter\u00b2 / (4\u03c0 area); higher = more irregular. Noise floor "
            f"\u00b1{nf.border}.",
        ),
        (
            "Colours",
            ("added " + ", ".join(ch.colors_added) if ch.colors_added else "none added")
            + "; "
            + ("lost " + ", ".join(ch.colors_lost) if ch.colors_lost else "none lost"),
            "Dermoscopic colour classes present in one photo only. Light and camera change "
            "colours: trust them only when the skin ITA below barely changed.",
        ),
        (
            "Colour variegation",
            f"{ch.color_variegation_delta:+.1f}",
            "Change of the colour spread inside the lesion (CIELAB units).",
        ),
        (
            "Skin ITA (lighting check)",
            _fmt(ch.ita_delta_deg, 0, "\u00b0"),
            "Change of the surrounding skin's Individual Typology Angle: large values mean the "
            "light or camera differ, not the lesion.",
        ),
    ]
    reg_rows = [
        ("Method", reg.method, "Feature matching, robust fit (RANSAC/MAGSAC), ECC refinement."),
        (
            "Matches",
            f"{reg.inliers} of {reg.matches}",
            "Feature matches that agree on one transform.",
        ),
        (
            "Alignment error",
            f"{reg.reprojection_error_px:.2f} px",
            "Typical distance between matched skin points after alignment (later photo pixels).",
        ),
        (
            "Zoom / rotation",
            f"{reg.scale:.3f}\u00d7 / {reg.rotation_deg:.1f}\u00b0",
            "How the later photo differs: >1 means taken closer.",
        ),
    ]
    scale_rows = []
    for key in ("earlier", "later"):
        s = r.scale[key]
        text = "none" if s.mm_per_pixel is None else f"{s.mm_per_pixel:.4g} mm/px ({s.source})"
        if s.uncertainty_mm_per_pixel is not None:
            text += f" \u00b1{s.uncertainty_mm_per_pixel:.2g}"
        scale_rows.append((f"Scale, {key} photo", text, "Where the millimetres come from."))
    figures = "\n".join(
        f'<figure><img src="{_data_uri(pic)}" alt="{html.escape(name)}">'
        f"<figcaption>{html.escape(cap)}</figcaption></figure>"
        for name, (pic, cap) in pictures.items()
    )
    warnings = ""
    if r.warnings:
        items = "\n".join(f"<li>{html.escape(w)}</li>" for w in r.warnings)
        warnings = f'<div class="warnings"><strong>Warnings</strong><ul>\n{items}\n</ul></div>'
    expl = "\n".join(f"<p>{html.escape(t)}</p>" for t in r.explanation)
    nm = "\n".join(f"<li>{html.escape(t)}</li>" for t in r.not_measurable)
    d = html.escape(r.disclaimer)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="skinscreen {html.escape(__version__)}">
<title>Lesion change: {html.escape(r.earlier.image.name)} to {html.escape(r.later.image.name)}</title>
{_style()}
</head>
<body>
<header>
  <h1>Lesion change: {html.escape(r.verdict)}</h1>
  <p class="sub">earlier {html.escape(r.earlier.image.name)} &middot; later
  {html.escape(r.later.image.name)}</p>
  <p class="disclaimer">{d}</p>
</header>
{warnings}
<section>
<h2>In short</h2>
{expl}
</section>
<h2>Pictures</h2>
<div class="figures">
{figures}
</div>
{_section("Change", rows)}
{_section("Noise floor", [("Source", "", nf.source)])}
{_section("Alignment", reg_rows)}
{_section("Scale", scale_rows)}
<section>
<h2>Not measurable</h2>
<ul>
{nm}
</ul>
</section>
<p class="disclaimer">{d}</p>
<p class="foot">Generated offline by skinscreen {html.escape(__version__)} (change report schema
{html.escape(r.schema_version)}; docs/compare.md). All pictures are embedded in this file; nothing
was sent anywhere.</p>
</body>
</html>
"""
