"""Lesion features from a mask and its photo, regionprops style.

:class:`LesionProperties` computes each feature lazily, on first access, with noun-first names
(``area_px``, ``diameter_max_mm``, ``asymmetry_major``...). Lengths come in pixels (``*_px``) and,
when a scale is known (``spacing`` in mm per pixel), in millimetres (``*_mm``, ``*_mm2``); without
a scale the mm fields are None. Definitions and sources: ``docs/features.md``.

Conventions: the mask is ``(H, W)`` bool, the photo ``(H, W, 3)`` uint8 sRGB; points are ``[x, y]``
(column, row) in photo pixels; angles are in degrees, counter-clockwise as seen on screen, from
the +x axis (3 o'clock).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import curve_fit
from scipy.spatial.distance import pdist, squareform
from scipy.special import expit
from skimage.measure import regionprops

from skinscreen.assess import color as col
from skinscreen.assess.skintone import ita_category, ita_deg
from skinscreen.errors import SkinscreenError

#: An axis is *asymmetric* when more than this fraction of the lesion's area does not overlap its
#: mirror image about that axis (a convention, not calibrated; the raw indices are reported).
ASYMMETRY_THRESHOLD = 0.10
#: The two halves about an axis differ in colour when their mean colours differ by more than this
#: CIEDE2000 difference (about twice a just-noticeable difference in skin photos; a convention).
COLOR_ASYMMETRY_THRESHOLD = 5.0
#: An octant's border is *abrupt* when its lesion-to-skin lightness transition (10-90 % rise) is at
#: most this fraction of the lesion's equivalent radius (a convention, see docs/features.md).
BORDER_ABRUPT_WIDTH = 0.2
#: Octants whose lesion-to-skin lightness contrast is below this (L* units) have no abruptness.
BORDER_MIN_CONTRAST = 3.0
#: Half-width of the band around the mask edge whose lightness profile is fitted, in units of R.
BORDER_WINDOW = 0.25
#: The clinical "D" flag of the ABCDE rule: maximum diameter above 6 mm.
DIAMETER_FLAG_MM = 6.0
#: Colour, skin and border features are computed on the lesion's neighbourhood resampled so that
#: its longer side is at most this many pixels (they are all scale-free).
WORK_SIZE = 768
#: Douglas-Peucker tolerance (px) of the contour whose length is the perimeter.
PERIMETER_TOLERANCE_PX = 1.0
#: Lesions whose equivalent diameter is below this many pixels are too small to measure well.
MIN_DIAMETER_PX = 32.0

#: Scalar features in :meth:`LesionProperties.to_dict` (the CSV columns), in order.
FEATURE_NAMES: tuple[str, ...] = (
    "area_px",
    "area_mm2",
    "perimeter_px",
    "perimeter_mm",
    "diameter_max_px",
    "diameter_max_mm",
    "diameter_equivalent_px",
    "diameter_equivalent_mm",
    "diameter_over_6mm",
    "axis_major_length_px",
    "axis_minor_length_px",
    "axis_major_angle_deg",
    "asymmetry_major",
    "asymmetry_minor",
    "asymmetry_count",
    "color_asymmetry_major",
    "color_asymmetry_minor",
    "color_asymmetry_count",
    "compactness",
    "solidity",
    "border_abrupt_count",
    "border_edge_width",
    "color_count",
    "colors_present",
    "color_variegation",
    "ita_deg",
    "skin_tone",
)


@dataclass(frozen=True)
class _Work:
    """The lesion's neighbourhood, resampled for colour, skin and border features.

    ``mask`` ``(h, w)`` bool and ``lab``/``lab_smooth`` ``(h, w, 3)`` float32 cover the photo
    region ``box`` (XYXY, integer photo pixels) scaled by ``factor`` (working px per photo px).
    ``dist_in``/``dist_out``: Euclidean distance (working px) to the nearest pixel of the other
    side. ``radius``: the lesion's equivalent radius in working px.
    """

    mask: np.ndarray
    lab: np.ndarray
    lab_smooth: np.ndarray
    dist_in: np.ndarray
    dist_out: np.ndarray
    box: tuple[int, int, int, int]
    factor: float
    radius: float

    def to_work(self, xy: np.ndarray) -> np.ndarray:
        """Photo ``[x, y]`` -> working ``[x, y]`` (pixel centres map to pixel centres)."""
        x0, y0 = self.box[:2]
        return (np.asarray(xy, float) - [x0, y0] + 0.5) * self.factor - 0.5


class LesionProperties:
    """Measurements of one lesion, computed lazily.

    Args:
        mask: ``(H, W)`` lesion mask (bool, or 0/255; non-zero is lesion). All foreground pixels
            count as one lesion.
        image: ``(H, W, 3)`` uint8 RGB photo; needed for colour, skin-tone and border-abruptness
            features (shape features work without it).
        spacing: scale in mm per pixel (isotropic). Without it every ``*_mm`` field is None.

    Raises:
        SkinscreenError: empty mask, shape mismatch, or a non-positive spacing.
    """

    def __init__(
        self,
        mask: np.ndarray,
        image: np.ndarray | None = None,
        spacing: float | None = None,
    ):
        m = np.asarray(mask)
        if m.ndim != 2:
            raise SkinscreenError(f"mask must be a 2-D (H, W) array, got shape {m.shape}")
        self.mask = m.astype(bool) if m.dtype != bool else m
        if not self.mask.any():
            raise SkinscreenError("the lesion mask is empty: there is nothing to measure")
        if image is not None:
            image = np.asarray(image)
            if image.shape != (*self.mask.shape, 3) or image.dtype != np.uint8:
                raise SkinscreenError(
                    f"image must be (H, W, 3) uint8 matching the mask {self.mask.shape}, "
                    f"got {image.shape} {image.dtype}"
                )
        self.image = image
        if spacing is not None:
            spacing = float(spacing)
            if not math.isfinite(spacing) or spacing <= 0:
                raise SkinscreenError(
                    f"spacing must be a positive number of mm per pixel, got {spacing}"
                )
        self.spacing = spacing

    # -- helpers -----------------------------------------------------------------------------
    def _mm(self, px: float, power: int = 1) -> float | None:
        return None if self.spacing is None else float(px) * self.spacing**power

    def _need_image(self, what: str) -> np.ndarray:
        if self.image is None:
            raise SkinscreenError(f"{what} needs the photo: pass image= to LesionProperties")
        return self.image

    @cached_property
    def _region(self):
        return regionprops(self.mask.astype(np.uint8))[0]

    # -- size --------------------------------------------------------------------------------
    @cached_property
    def area_px(self) -> int:
        """Number of lesion pixels."""
        return int(np.count_nonzero(self.mask))

    @property
    def area_mm2(self) -> float | None:
        return self._mm(self.area_px, 2)

    @cached_property
    def perimeter_px(self) -> float:
        """Boundary length: the pixel-centre contours (OpenCV ``findContours``, holes included)
        simplified by Douglas-Peucker with a tolerance of :data:`PERIMETER_TOLERANCE_PX`, then
        summed (``arcLength``). Within about 1 % of the true length for discs, ellipses and
        squares at any rotation; the raw chain-code length overestimates curves by 5-25 %."""
        contours, _ = cv2.findContours(
            self.mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE
        )
        return float(
            sum(
                cv2.arcLength(cv2.approxPolyDP(c, PERIMETER_TOLERANCE_PX, True), True)
                for c in contours
            )
        )

    @property
    def perimeter_mm(self) -> float | None:
        return self._mm(self.perimeter_px)

    @cached_property
    def diameter_max_px(self) -> float:
        """Maximum Feret diameter: the longest distance between two boundary points (skimage)."""
        return float(self._region.feret_diameter_max)

    @property
    def diameter_max_mm(self) -> float | None:
        return self._mm(self.diameter_max_px)

    @cached_property
    def diameter_max_endpoints(self) -> np.ndarray:
        """``(2, 2)`` ``[[x, y], [x, y]]``: the farthest pair of convex-hull pixel centres."""
        contours, _ = cv2.findContours(
            self.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        pts = cv2.convexHull(np.concatenate(contours)).reshape(-1, 2).astype(np.float64)
        if len(pts) == 1:
            return np.stack([pts[0], pts[0]])
        d = squareform(pdist(pts))
        i, j = np.unravel_index(np.argmax(d), d.shape)
        return np.stack([pts[i], pts[j]])

    @cached_property
    def diameter_equivalent_px(self) -> float:
        """Diameter of the disc with the lesion's area: ``sqrt(4 A / pi)``."""
        return float(math.sqrt(4.0 * self.area_px / math.pi))

    @property
    def diameter_equivalent_mm(self) -> float | None:
        return self._mm(self.diameter_equivalent_px)

    @property
    def diameter_over_6mm(self) -> bool | None:
        """ABCDE's D: maximum diameter above 6 mm (None without a scale)."""
        d = self.diameter_max_mm
        return None if d is None else bool(d > DIAMETER_FLAG_MM)

    # -- principal axes ----------------------------------------------------------------------
    @cached_property
    def centroid_xy(self) -> np.ndarray:
        """``(2,)`` ``[x, y]`` centroid of the lesion pixels."""
        r, c = self._region.centroid
        return np.array([c, r], dtype=np.float64)

    @cached_property
    def axis_directions(self) -> np.ndarray:
        """``(2, 2)`` unit vectors ``[[dx, dy] major, [dx, dy] minor]`` in photo ``[x, y]``.

        Eigenvectors of the covariance of the lesion's pixel coordinates (its second central
        moments): the major axis is the direction of largest spread.
        """
        ys, xs = np.nonzero(self.mask)
        cov = np.cov(np.stack([xs, ys]).astype(np.float64)) if xs.size > 1 else np.eye(2)
        vals, vecs = np.linalg.eigh(np.atleast_2d(cov))
        major, minor = vecs[:, 1], vecs[:, 0]
        return np.stack([major, minor])

    @property
    def axis_major_angle_deg(self) -> float:
        """Major-axis angle in [0, 180) degrees, counter-clockwise on screen from +x."""
        dx, dy = self.axis_directions[0]
        return float(np.degrees(np.arctan2(-dy, dx)) % 180.0)

    @property
    def axis_major_length_px(self) -> float:
        """Major axis of the ellipse with the same second moments (scikit-image)."""
        return float(self._region.axis_major_length)

    @property
    def axis_minor_length_px(self) -> float:
        return float(self._region.axis_minor_length)

    # -- asymmetry (A) -----------------------------------------------------------------------
    def _mirror_overlap(self, direction: np.ndarray) -> float:
        """Fraction of the lesion area that does not overlap its mirror image about the line
        through the centroid along ``direction`` ``[dx, dy]`` (bilinear, sub-pixel)."""
        ys, xs = np.nonzero(self.mask)
        c = self.centroid_xy
        d = np.asarray(direction, float)
        p = np.stack([xs, ys], axis=1) - c
        refl = 2.0 * (p @ d)[:, None] * d[None, :] - p + c  # reflect about the axis
        y0, x0 = ys.min(), xs.min()
        crop = self.mask[y0 : ys.max() + 1, x0 : xs.max() + 1].astype(np.float32)
        vals = ndi.map_coordinates(
            crop, [refl[:, 1] - y0, refl[:, 0] - x0], order=1, mode="constant", cval=0.0
        )
        return float(1.0 - vals.sum() / xs.size)

    @cached_property
    def asymmetry_major(self) -> float:
        """Shape asymmetry about the major axis: non-overlapping area fraction in [0, 1]."""
        return self._mirror_overlap(self.axis_directions[0])

    @cached_property
    def asymmetry_minor(self) -> float:
        """Shape asymmetry about the minor axis: non-overlapping area fraction in [0, 1]."""
        return self._mirror_overlap(self.axis_directions[1])

    @property
    def asymmetry_count(self) -> int:
        """Number of principal axes (0-2) with asymmetry above :data:`ASYMMETRY_THRESHOLD`."""
        return int(self.asymmetry_major > ASYMMETRY_THRESHOLD) + int(
            self.asymmetry_minor > ASYMMETRY_THRESHOLD
        )

    def _halves_delta_e(self, direction: np.ndarray) -> float | None:
        w = self._work
        ys, xs = np.nonzero(w.mask)
        c = w.to_work(self.centroid_xy)
        dx, dy = direction
        side = (xs - c[0]) * dy - (ys - c[1]) * dx
        lab = w.lab_smooth[ys, xs]
        a, b = lab[side > 0], lab[side < 0]
        if len(a) < 10 or len(b) < 10:
            return None
        return col.delta_e(a.mean(axis=0), b.mean(axis=0))

    @cached_property
    def color_asymmetry_major(self) -> float | None:
        """CIEDE2000 difference between the mean colours of the two halves about the major axis."""
        return self._halves_delta_e(self.axis_directions[0])

    @cached_property
    def color_asymmetry_minor(self) -> float | None:
        """CIEDE2000 difference between the mean colours of the two halves about the minor axis."""
        return self._halves_delta_e(self.axis_directions[1])

    @property
    def color_asymmetry_count(self) -> int:
        """Axes (0-2) whose halves differ by more than :data:`COLOR_ASYMMETRY_THRESHOLD`."""
        vals = (self.color_asymmetry_major, self.color_asymmetry_minor)
        return sum(int(v is not None and v > COLOR_ASYMMETRY_THRESHOLD) for v in vals)

    # -- border (B) --------------------------------------------------------------------------
    @property
    def compactness(self) -> float:
        """Compactness index ``P^2 / (4 pi A)``: 1 for a disc, larger for irregular borders."""
        return float(self.perimeter_px**2 / (4.0 * math.pi * self.area_px))

    @property
    def solidity(self) -> float:
        """Area over convex-hull area (scikit-image): 1 for convex shapes."""
        return float(self._region.solidity)

    @cached_property
    def border_edge_width(self) -> list[float | None]:
        """Border abruptness profile: the width of the lesion-to-skin transition in 8 octants.

        Octant k covers angles [45k, 45k + 45) degrees about the centroid (0 = 3 o'clock,
        counter-clockwise on screen). In each octant the median ``L*`` of the pixels at signed
        distance ``s`` from the mask edge (negative inside, ``|s| <= max(8 px, 0.25 R)``, 1 px bins)
        is fitted with a logistic step ``lo + (hi - lo) / (1 + exp(-(s - s0) / k))``; the value is
        the 10-90 % rise distance ``2 ln(9) k`` in units of the equivalent radius R. Small values
        mean an abrupt cut-off; the fitted edge position ``s0`` may differ from the mask edge, so
        a slightly loose or tight mask does not change the value. None when the octant has too
        few pixels (photo edge), a contrast below :data:`BORDER_MIN_CONTRAST` or the fit fails.
        """
        w = self._work
        r = w.radius
        far = max(8.0, BORDER_WINDOW * r)
        s = np.where(w.mask, -w.dist_in + 0.5, w.dist_out - 0.5)  # signed distance, working px
        ys, xs = np.nonzero(np.abs(s) <= far)
        c = w.to_work(self.centroid_xy)
        ang = np.degrees(np.arctan2(-(ys - c[1]), xs - c[0])) % 360.0
        octant = np.minimum((ang // 45.0).astype(int), 7)
        n_bins = int(np.clip(round(2 * far), 16, 80))
        bins = np.clip(((s[ys, xs] + far) / (2 * far) * n_bins).astype(int), 0, n_bins - 1)
        centres = (np.arange(n_bins) + 0.5) / n_bins * 2 * far - far
        lv = w.lab[ys, xs, 0]
        return [
            _edge_width(centres, bins[octant == k], lv[octant == k], n_bins, far, r)
            for k in range(8)
        ]

    @property
    def border_abrupt_count(self) -> int:
        """Octants (0-8) whose edge width is at most :data:`BORDER_ABRUPT_WIDTH` (abrupt)."""
        return sum(int(v is not None and v <= BORDER_ABRUPT_WIDTH) for v in self.border_edge_width)

    # -- colour (C) --------------------------------------------------------------------------
    @cached_property
    def _work(self) -> _Work:
        image = self._need_image("colour, skin and border features")
        h, w = self.mask.shape
        r = math.sqrt(self.area_px / math.pi)
        ys, xs = np.nonzero(self.mask)
        margin = int(math.ceil(0.8 * r + 12))
        x0, y0 = max(0, xs.min() - margin), max(0, ys.min() - margin)
        x1, y1 = min(w, xs.max() + 1 + margin), min(h, ys.max() + 1 + margin)
        factor = min(1.0, WORK_SIZE / max(x1 - x0, y1 - y0))
        img = image[y0:y1, x0:x1]
        m = self.mask[y0:y1, x0:x1]
        if factor < 1.0:
            size = (max(1, round((x1 - x0) * factor)), max(1, round((y1 - y0) * factor)))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            m = cv2.resize(m.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
            factor = size[0] / (x1 - x0)
        m = np.ascontiguousarray(m)
        return _Work(
            mask=m,
            lab=col.to_lab(img),
            lab_smooth=col.to_lab(cv2.medianBlur(np.ascontiguousarray(img), 5)),
            dist_in=ndi.distance_transform_edt(m),
            dist_out=ndi.distance_transform_edt(~m),
            box=(int(x0), int(y0), int(x1), int(y1)),
            factor=float(factor),
            radius=max(1.0, r * factor),
        )

    @cached_property
    def _color_labels(self) -> np.ndarray:
        """``(n,)`` class indices of the working mask's pixels (row-major order)."""
        w = self._work
        return col.classify_colors(w.lab_smooth[w.mask], self.skin_lab)

    @property
    def color_fractions(self) -> dict[str, float]:
        """Fraction of lesion pixels in each class of :data:`color.COLOR_CLASSES`."""
        return col.color_fractions(self._color_labels)

    @property
    def colors_present(self) -> list[str]:
        """Dermoscopic colours covering at least :data:`color.COLOR_MIN_FRACTION` of the lesion."""
        f = self.color_fractions
        return [c for c in col.DERMOSCOPIC_COLORS if f[c] >= col.COLOR_MIN_FRACTION]

    @property
    def color_count(self) -> int:
        """Number of dermoscopic colours present (0-6; the ABCD rule's C counts 1-6)."""
        return len(self.colors_present)

    @cached_property
    def color_std_lab(self) -> list[float]:
        """Standard deviation of ``L*``, ``a*``, ``b*`` over the lesion (median-filtered photo)."""
        w = self._work
        return [float(v) for v in w.lab_smooth[w.mask].std(axis=0)]

    @property
    def color_variegation(self) -> float:
        """Colour variegation: ``sqrt(var L* + var a* + var b*)`` over the lesion (CIELAB units)."""
        return float(math.sqrt(sum(v * v for v in self.color_std_lab)))

    def color_class_map(self) -> np.ndarray:
        """``(H, W)`` int8 map of colour classes (indices into ``COLOR_CLASSES``), -1 off-lesion."""
        w = self._work
        lab_map = np.full(w.mask.shape, -1, dtype=np.int8)
        lab_map[w.mask] = self._color_labels
        x0, y0, x1, y1 = w.box
        full = np.full(self.mask.shape, -1, dtype=np.int8)
        full[y0:y1, x0:x1] = cv2.resize(
            lab_map, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST
        )
        # photo pixels whose nearest working pixel lies off the working mask: nearest class
        holes = self.mask & (full < 0)
        if holes.any():
            idx = ndi.distance_transform_edt(full < 0, return_distances=False, return_indices=True)
            full[holes] = full[idx[0][holes], idx[1][holes]]
        full[~self.mask] = -1
        return full

    # -- skin tone ---------------------------------------------------------------------------
    @cached_property
    def skin_ring(self) -> np.ndarray:
        """``(h, w)`` bool ring of skin around the lesion, in the working neighbourhood.

        Pixels whose distance to the lesion lies in ``(d1, d1 + max(6, 0.4 R)]`` with
        ``d1 = max(2, 0.1 R)`` (working px, R the equivalent radius), excluding near-black
        pixels (``L* <= 20``: dermoscope vignetting, hair shadows).
        """
        w = self._work
        d1 = max(2.0, 0.1 * w.radius)
        d2 = d1 + max(6.0, 0.4 * w.radius)
        return (w.dist_out > d1) & (w.dist_out <= d2) & (w.lab[..., 0] > 20.0)

    @cached_property
    def skin_lab(self) -> np.ndarray | None:
        """``(3,)`` median CIELAB colour of :attr:`skin_ring`; None with fewer than 30 pixels."""
        ring = self.skin_ring
        if np.count_nonzero(ring) < 30:
            return None
        return np.median(self._work.lab[ring], axis=0).astype(np.float64)

    @property
    def ita_deg(self) -> float | None:
        """Individual Typology Angle of the surrounding skin (degrees); None if unmeasurable."""
        return None if self.skin_lab is None else ita_deg(self.skin_lab)

    @property
    def skin_tone(self) -> str | None:
        """ITA category: very light, light, intermediate, tan, brown or dark."""
        return ita_category(self.ita_deg)

    # -- export ------------------------------------------------------------------------------
    def to_dict(self, names: tuple[str, ...] | None = None) -> dict:
        """Scalar features as a flat dict (lists joined with ';'), e.g. for a CSV row."""
        out = {}
        for name in names or FEATURE_NAMES:
            v = getattr(self, name)
            if isinstance(v, list):
                v = ";".join(str(x) for x in v)
            out[name] = v
        return out


def _logistic(s: np.ndarray, lo: float, hi: float, s0: float, k: float) -> np.ndarray:
    return lo + (hi - lo) * expit((s - s0) / k)


def _edge_width(
    centres: np.ndarray, bins: np.ndarray, light: np.ndarray, n_bins: int, far: float, r: float
) -> float | None:
    """10-90 % width (in units of ``r``) of a logistic fitted to one octant's median profile."""
    if bins.size == 0:
        return None
    order = np.argsort(bins, kind="stable")
    b, v = bins[order], light[order]
    starts = np.searchsorted(b, np.arange(n_bins))
    ends = np.searchsorted(b, np.arange(n_bins), side="right")
    keep = (ends - starts) >= 3
    if keep[: n_bins // 2].sum() < 4 or keep[n_bins // 2 :].sum() < 4:
        return None
    x = centres[keep]
    y = np.array([np.median(v[i:j]) for i, j, k in zip(starts, ends, keep, strict=True) if k])
    inner, outer = y[x < -far / 2], y[x > far / 2]
    if inner.size == 0 or outer.size == 0:
        return None
    lo, hi = float(np.median(inner)), float(np.median(outer))
    if abs(hi - lo) < BORDER_MIN_CONTRAST:
        return None
    try:
        (_, _, _, k), _ = curve_fit(
            _logistic,
            x,
            y,
            p0=(lo, hi, 0.0, far / 8),
            bounds=([-50.0, -50.0, -far, 0.05], [150.0, 150.0, far, 2 * far]),
            maxfev=2000,
        )
    except (RuntimeError, ValueError):
        return None
    return float(2.0 * math.log(9.0) * k / r)


def lesion_table(props: list[LesionProperties], names: tuple[str, ...] | None = None) -> dict:
    """Column-oriented table ``{name: [value per lesion]}``, like ``regionprops_table``."""
    names = names or FEATURE_NAMES
    rows = [p.to_dict(names) for p in props]
    return {n: [r[n] for r in rows] for n in names}
