"""Pictures of an assessment: probability heatmap, contour, axes and diameter, colour-class map.

Every function takes the ``(H, W, 3)`` uint8 RGB photo and returns a new ``(H', W', 3)`` uint8 RGB
picture, drawn with line widths and text sizes that scale with the photo so they stay readable on
a phone screen; a legend strip is added below where the colours need explaining.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from skinscreen.assess.color import COLOR_CLASSES, COLOR_DISPLAY_RGB, COLOR_MIN_FRACTION
from skinscreen.assess.features import LesionProperties

CONTOUR_RGB = (0, 220, 200)
MAJOR_RGB = (255, 210, 0)
MINOR_RGB = (255, 120, 0)
DIAMETER_RGB = (255, 60, 200)
UNCOUNTED_RGB = (175, 175, 190)  # colour-map pixels of classes below COLOR_MIN_FRACTION
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _thickness(image: np.ndarray) -> int:
    return max(2, round(max(image.shape[:2]) / 300))


def _font_scale(width: int) -> float:
    return max(0.6, width / 950)


def _contours(mask: np.ndarray) -> list[np.ndarray]:
    cs, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return list(cs)


def _legend(width: int, items: list[tuple[tuple[int, int, int], str]]) -> np.ndarray:
    """A white strip ``(h, width, 3)`` with a colour swatch and a label per item, wrapped."""
    fs = _font_scale(width)
    th = max(1, round(fs * 2))
    (_, text_h), _ = cv2.getTextSize("Ag", _FONT, fs, th)
    sw, pad = int(text_h * 1.4), int(text_h * 0.8)
    row_h = sw + pad
    x, rows = pad, [[]]
    for rgb, label in items:
        (tw, _), _ = cv2.getTextSize(label, _FONT, fs, th)
        need = sw + pad // 2 + tw + pad * 2
        if x + need > width and rows[-1]:
            rows.append([])
            x = pad
        rows[-1].append((x, rgb, label))
        x += need
    strip = np.full((len(rows) * row_h + pad, width, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        y = pad + r * row_h
        for x0, rgb, label in row:
            cv2.rectangle(strip, (x0, y), (x0 + sw, y + sw), tuple(int(c) for c in rgb), -1)
            cv2.rectangle(strip, (x0, y), (x0 + sw, y + sw), (60, 60, 60), 1)
            cv2.putText(
                strip,
                label,
                (x0 + sw + pad // 2, y + sw - max(1, sw // 6)),
                _FONT,
                fs,
                (20, 20, 20),
                th,
                cv2.LINE_AA,
            )
    return strip


def _colorbar(width: int, cmap: int, left: str, right: str) -> np.ndarray:
    """A horizontal colour bar strip with end labels."""
    fs = _font_scale(width)
    th = max(1, round(fs * 2))
    (lw, text_h), _ = cv2.getTextSize(left, _FONT, fs, th)
    (rw, _), _ = cv2.getTextSize(right, _FONT, fs, th)
    pad = int(text_h * 0.8)
    bar_h = int(text_h * 1.4)
    x0, x1 = pad * 2 + lw, width - pad * 2 - rw
    strip = np.full((bar_h + 2 * pad, width, 3), 255, np.uint8)
    ramp = np.linspace(0, 255, max(2, x1 - x0)).astype(np.uint8)[None, :]
    bar = cv2.cvtColor(cv2.applyColorMap(ramp, cmap), cv2.COLOR_BGR2RGB)
    strip[pad : pad + bar_h, x0:x1] = np.repeat(bar, bar_h, axis=0)
    y = pad + bar_h - max(1, bar_h // 6)
    cv2.putText(strip, left, (pad, y), _FONT, fs, (20, 20, 20), th, cv2.LINE_AA)
    cv2.putText(strip, right, (x1 + pad, y), _FONT, fs, (20, 20, 20), th, cv2.LINE_AA)
    return strip


@dataclass(frozen=True)
class View:
    """A region ``[x0, y0, x1, y1)`` of the photo (integer pixels) shown at ``scale`` x size."""

    x0: int
    y0: int
    x1: int
    y1: int
    scale: float

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the drawn picture."""
        return (
            max(1, round((self.x1 - self.x0) * self.scale)),
            max(1, round((self.y1 - self.y0) * self.scale)),
        )

    def image(self, image: np.ndarray) -> np.ndarray:
        crop = image[self.y0 : self.y1, self.x0 : self.x1]
        interp = cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR
        return cv2.resize(crop, self.size, interpolation=interp) if self.scale != 1 else crop.copy()

    def labels(self, a: np.ndarray) -> np.ndarray:
        """Crop and resize a label or mask array ``(H, W)`` (nearest neighbour)."""
        crop = np.ascontiguousarray(a[self.y0 : self.y1, self.x0 : self.x1])
        src = crop.astype(np.int16) if crop.dtype == bool else crop
        out = cv2.resize(src, self.size, interpolation=cv2.INTER_NEAREST)
        return out.astype(bool) if crop.dtype == bool else out

    def points(self, xy: np.ndarray) -> np.ndarray:
        """Photo ``[x, y]`` (..., 2) -> picture ``[x, y]`` (pixel centres to pixel centres)."""
        xy = np.asarray(xy, np.float64)
        return (xy - [self.x0, self.y0] + 0.5) * self.scale - 0.5


def full_view(size_hw: tuple[int, int], max_side: int = 1600) -> View:
    """The whole photo, shrunk so its longer side is at most ``max_side``."""
    h, w = size_hw
    return View(0, 0, w, h, min(1.0, max_side / max(h, w)))


def lesion_view(mask: np.ndarray, margin: float = 0.5, side: int = 900) -> View:
    """A square-ish zoom on the lesion: its box grown by ``margin`` x its size on each side,
    clipped to the photo and resampled so the longer side is ``side`` pixels."""
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    bw, bh = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    half = max(bw, bh) * (0.5 + margin)
    cx, cy = (xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2
    x0, x1 = max(0, int(cx - half)), min(w, int(np.ceil(cx + half)))
    y0, y1 = max(0, int(cy - half)), min(h, int(np.ceil(cy + half)))
    return View(x0, y0, x1, y1, side / max(x1 - x0, y1 - y0))


def _ipt(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))


def _dashed_line(out: np.ndarray, p, q, rgb, t: int) -> None:
    """A dashed line from ``p`` to ``q`` (picture pixels) with a dark edge, so a solid line under
    it (the major axis under the maximum diameter) stays visible between the dashes."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    length = float(np.hypot(*(q - p)))
    dash = max(4.0, 4.0 * t)
    n = max(1, int(length // (2 * dash)))
    for i in range(n + 1):
        a = p + (q - p) * min(1.0, (2 * i * dash) / max(length, 1e-9))
        b = p + (q - p) * min(1.0, (2 * i * dash + dash) / max(length, 1e-9))
        cv2.line(out, _ipt(a), _ipt(b), (0, 0, 0), t + 2, cv2.LINE_AA)
        cv2.line(out, _ipt(a), _ipt(b), rgb, t, cv2.LINE_AA)


#: scale bar lengths tried, in mm (the longest that fits a quarter of the picture is drawn)
_BAR_MM = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)


def scale_bar(out: np.ndarray, view: View, mm_per_pixel: float | None) -> None:
    """Draw a scale bar in the bottom-left corner of ``out`` (a picture of ``view``): a round
    number of millimetres when the photo's scale is known, else of photo pixels."""
    px_per_unit = view.scale / mm_per_pixel if mm_per_pixel else view.scale
    lengths = _BAR_MM if mm_per_pixel else (10, 20, 50, 100, 200, 500, 1000)
    fit = [v for v in lengths if v * px_per_unit <= out.shape[1] / 4] or [lengths[0]]
    value = fit[-1]
    bar = max(1, round(value * px_per_unit))
    label = f"{value:g} mm" if mm_per_pixel else f"{value:g} px (no scale)"
    fs = _font_scale(out.shape[1]) * 0.8
    th = max(1, round(fs * 2))
    (tw, text_h), _ = cv2.getTextSize(label, _FONT, fs, th)
    t = _thickness(out)
    pad = max(6, text_h // 2)
    x0, y = pad * 2, out.shape[0] - pad * 2
    box = (x0 - pad, y - text_h - 3 * pad - t), (x0 + max(bar, tw) + pad, y + pad)
    cv2.rectangle(out, box[0], box[1], (255, 255, 255), -1)
    cv2.line(out, (x0, y), (x0 + bar, y), (0, 0, 0), t + 1)
    for x in (x0, x0 + bar):
        cv2.line(out, (x, y - 2 * t), (x, y + t), (0, 0, 0), max(1, t // 2 + 1))
    cv2.putText(out, label, (x0, y - 2 * t - pad), _FONT, fs, (0, 0, 0), th, cv2.LINE_AA)


def contour_overlay(image: np.ndarray, mask: np.ndarray, view: View | None = None) -> np.ndarray:
    """The photo (or its ``view``, default the whole photo) with the lesion outline drawn."""
    view = view or full_view(mask.shape)
    out = view.image(image)
    t = _thickness(out)
    cs = _contours(view.labels(mask))
    cv2.polylines(out, cs, True, (0, 0, 0), t + 2, cv2.LINE_AA)
    cv2.polylines(out, cs, True, CONTOUR_RGB, t, cv2.LINE_AA)
    return out


def heatmap_overlay(
    image: np.ndarray,
    probability: np.ndarray,
    mask: np.ndarray | None = None,
    view: View | None = None,
) -> np.ndarray:
    """The model's lesion probability ``(H, W)`` in [0, 1] over the photo, with a colour bar.

    The inferno colour map is blended with weight ``0.65 * sqrt(p)``, so background (p ~ 0) shows
    the photo unchanged; the mask outline (p = 0.5) is drawn thin in white when given.
    """
    view = view or full_view(probability.shape)
    photo = view.image(image)
    p = np.clip(view.image(np.asarray(probability, np.float32)), 0.0, 1.0)
    cmap = cv2.cvtColor(
        cv2.applyColorMap((p * 255).astype(np.uint8), cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB
    )
    w = (0.65 * np.sqrt(p))[..., None]
    out = (photo.astype(np.float32) * (1 - w) + cmap.astype(np.float32) * w + 0.5).astype(np.uint8)
    if mask is not None:
        cs = _contours(view.labels(mask))
        cv2.polylines(out, cs, True, (255, 255, 255), max(1, _thickness(out) // 2), cv2.LINE_AA)
    bar = _colorbar(out.shape[1], cv2.COLORMAP_INFERNO, "lesion probability 0", "1")
    return np.vstack([out, bar])


def axes_overlay(
    image: np.ndarray, props: LesionProperties, view: View | None = None
) -> np.ndarray:
    """Outline, the two principal axes through the centroid, and the maximum diameter
    (default view: a zoom on the lesion), with a legend."""
    view = view or lesion_view(props.mask)
    out = contour_overlay(image, props.mask, view)
    t = _thickness(out)
    c = props.centroid_xy
    for d, length, rgb in (
        (props.axis_directions[0], props.axis_major_length_px, MAJOR_RGB),
        (props.axis_directions[1], props.axis_minor_length_px, MINOR_RGB),
    ):
        a, b = _ipt(view.points(c - d * length / 2)), _ipt(view.points(c + d * length / 2))
        cv2.line(out, a, b, (0, 0, 0), t + 2, cv2.LINE_AA)
        cv2.line(out, a, b, rgb, t, cv2.LINE_AA)
    p, q = (_ipt(e) for e in view.points(props.diameter_max_endpoints))
    _dashed_line(out, p, q, DIAMETER_RGB, t)  # dashed: the major axis often lies under it
    for e in (p, q):
        cv2.circle(out, e, t * 2, DIAMETER_RGB, -1, cv2.LINE_AA)
    cv2.circle(out, _ipt(view.points(c)), t * 2, (255, 255, 255), -1, cv2.LINE_AA)
    scale_bar(out, view, props.spacing)
    d_mm = props.diameter_max_mm
    dlabel = (
        f"max diameter {d_mm:.1f} mm"
        if d_mm is not None
        else f"max diameter {props.diameter_max_px:.0f} px"
    )
    legend = _legend(
        out.shape[1],
        [
            (CONTOUR_RGB, "outline"),
            (MAJOR_RGB, "major axis"),
            (MINOR_RGB, "minor axis"),
            (DIAMETER_RGB, dlabel + " (dashed)"),
        ],
    )
    return np.vstack([out, legend])


def color_map_overlay(
    image: np.ndarray, props: LesionProperties, view: View | None = None
) -> np.ndarray:
    """Lesion pixels painted with their colour class over a greyed photo (default view: a zoom on
    the lesion), with a legend giving each class's share of the lesion."""
    view = view or lesion_view(props.mask)
    labels = view.labels(props.color_class_map())
    photo = view.image(image)
    grey = cv2.cvtColor(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    out = (grey.astype(np.float32) * 0.6 + 255 * 0.4).astype(np.uint8)
    # a class below COLOR_MIN_FRACTION of the lesion is not counted as one of its colours: show
    # it as such (a thin band of "red" where light and dark brown meet is not a vascular sign)
    counted = set(props.colors_present) | {"skin"}
    palette = np.array(
        [COLOR_DISPLAY_RGB[c] if c in counted else UNCOUNTED_RGB for c in COLOR_CLASSES], np.uint8
    )
    inside = labels >= 0
    out[inside] = palette[labels[inside]]
    cs = _contours(view.labels(props.mask))
    cv2.polylines(out, cs, True, (0, 0, 0), max(1, _thickness(out) // 2), cv2.LINE_AA)
    scale_bar(out, view, props.spacing)
    fr = props.color_fractions
    items = [
        (COLOR_DISPLAY_RGB[c], f"{c.replace('_', ' ')} {fr[c]:.0%}")
        for c in COLOR_CLASSES
        if c in counted and fr[c] > 0.005
    ]
    minor = sum(fr[c] for c in COLOR_CLASSES if c not in counted)
    if minor > 0.005:
        items.append((UNCOUNTED_RGB, f"not counted (each < {COLOR_MIN_FRACTION:.0%}) {minor:.0%}"))
    return np.vstack([out, _legend(out.shape[1], items)])
