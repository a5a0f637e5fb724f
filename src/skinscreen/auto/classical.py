"""Classical lesion proposals: contrast channel, Otsu threshold, ranked connected components.

Pipeline on a working copy (longest side :data:`WORK_SIZE` px):

1. hair and ruler marks are inpainted (black-hat + Telea), vignette corners and saturated
   artefacts (stickers, ink, fabric) are masked out;
2. a lesion-contrast channel is computed (see :data:`CHANNELS`);
3. Otsu's threshold over the valid pixels seeds the lesion, hysteresis grows it into its paler
   rim, the result is cleaned (opening, closing, hole filling) and its connected components
   become candidates;
4. each component is scored by contrast x sqrt(area) x a Gaussian prior toward the image centre
   x solidity, with penalties for unusual colours and for hugging the border.

Parameters were chosen on lesions-train (see docs/auto.md), not on the dev set.

Boxes are returned in original photo pixels, XYXY.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage as ndi

from skinscreen.auto.artefacts import (
    colour_artefact_mask,
    correct_vignetting,
    hair_mask,
    remove_hair,
    strong_colour,
    to_lab,
)

WORK_SIZE = 320
CHANNELS = ("darkness", "blue", "pca", "skin_distance")
#: hysteresis low threshold = skin + (1 - GROW) x (Otsu - skin); chosen on lesions-train
GROW = 0.5
#: the hysteresis growth reaches at most this fraction of the longest side beyond the seeds
GROW_REACH = 0.06
#: exponent of the solidity factor in the component score
SOLIDITY_POWER = 1.0


@dataclass(frozen=True)
class Proposal:
    """One classical lesion proposal on the working grid.

    Attributes:
        mask: ``(h, w)`` bool, the component on the working grid.
        box: ``(4,)`` XYXY box in original photo pixels.
        score: ranking score (higher is more lesion-like), not a probability.
        channel: the contrast channel that produced it.
        features: the terms of the score (``contrast`` in channel units, ``contrast_rel``,
            ``area_frac``, ``centre_distance``, ``border_share``, ``odd_colour``).
    """

    mask: np.ndarray
    box: np.ndarray
    score: float
    channel: str
    features: dict


@dataclass
class WorkImage:
    """The photo prepared for classical analysis.

    Attributes:
        rgb: ``(h, w, 3)`` uint8 RGB working copy, hair inpainted.
        lab: ``(h, w, 3)`` float32 CIELAB of ``rgb``.
        valid: ``(h, w)`` bool, pixels that are neither vignette nor colour artefact.
        scale_xy: (sx, sy) working size / original size in x and y.
        original_size: (H, W) of the photo.
    """

    rgb: np.ndarray
    lab: np.ndarray
    valid: np.ndarray
    scale_xy: tuple[float, float]
    original_size: tuple[int, int]


def prepare(image: np.ndarray, work_size: int = WORK_SIZE) -> WorkImage:
    """Resize ``(H, W, 3)`` uint8 RGB to the working grid, remove hair, find artefacts."""
    h, w = image.shape[:2]
    s = work_size / max(h, w)
    nw, nh = max(1, int(round(w * s))), max(1, int(round(h * s)))
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA) if s < 1 else image.copy()
    nh, nw = small.shape[:2]
    small = remove_hair(small, hair_mask(small))
    small, vignette = correct_vignetting(small, to_lab(small))
    lab = to_lab(small)
    invalid = vignette | colour_artefact_mask(lab)
    return WorkImage(small, lab, ~invalid, (nw / w, nh / h), (h, w))


def contrast_channel(work: WorkImage, name: str) -> np.ndarray:
    """Lesion-contrast channel ``(h, w)`` float32: larger means more lesion-like.

    ``darkness``: 100 - L*. ``blue``: 255 - B (lesions absorb blue). ``pca``: first principal
    component of L*a*b* over valid pixels, signed so that darker is larger. ``skin_distance``:
    Euclidean distance in L*a*b* from the skin colour (median of the valid pixels in the outer
    ring of the frame), with L* counted twice and only darker-than-skin L* differences kept.
    """
    lab = work.lab
    if name == "darkness":
        return (100.0 - lab[..., 0]).astype(np.float32)
    if name == "blue":
        return 255.0 - work.rgb[..., 2].astype(np.float32)
    if name == "pca":
        x = lab[work.valid].reshape(-1, 3).astype(np.float64)
        mu = x.mean(0)
        _, _, vt = np.linalg.svd(x - mu, full_matrices=False)
        v = vt[0]
        if v[0] > 0:  # make darker (lower L) the positive direction
            v = -v
        return ((lab - mu) @ v).astype(np.float32)
    if name == "skin_distance":
        h, w = lab.shape[:2]
        ring = np.ones((h, w), dtype=bool)
        ring[h // 6 : h - h // 6, w // 6 : w - w // 6] = False
        ring &= work.valid
        ref = np.median(lab[ring if ring.sum() > 50 else work.valid], axis=0)
        d = lab - ref
        dl = np.minimum(d[..., 0], 0.0)  # only darker than skin
        return np.sqrt(4 * dl**2 + d[..., 1] ** 2 + d[..., 2] ** 2).astype(np.float32)
    raise ValueError(f"unknown channel {name!r}; choose one of {CHANNELS}")


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of a 1-D float array (skimage.filters.threshold_otsu)."""
    from skimage.filters import threshold_otsu

    return float(threshold_otsu(values, nbins=256))


def segment_channel(work: WorkImage, channel: np.ndarray, grow: float = GROW) -> np.ndarray:
    """Otsu split of a contrast channel over the valid pixels -> ``(h, w)`` bool foreground.

    Hysteresis: pixels above Otsu's threshold t seed the foreground, which then grows through
    connected pixels above ``skin + (1 - grow) * (t - skin)`` (skin = the channel's median over
    valid pixels) within :data:`GROW_REACH` of a seed, so a dark core pulls in the paler rim of
    the same lesion without leaking into a neighbouring blush.
    """
    from skimage.filters import apply_hysteresis_threshold

    ch = cv2.GaussianBlur(channel, (0, 0), 1.5)
    vals = ch[work.valid]
    if vals.size < 100 or float(vals.max() - vals.min()) < 1e-3:
        return np.zeros(ch.shape, dtype=bool)
    t = otsu_threshold(vals)
    skin = float(np.median(vals))
    low = skin + (1.0 - grow) * (t - skin) if t > skin else t
    seeds = (ch > t) & work.valid
    reach = cv2.distanceTransform((~seeds).astype(np.uint8), cv2.DIST_L2, 3) <= GROW_REACH * max(
        ch.shape
    )
    fg = apply_hysteresis_threshold(np.where(work.valid & reach, ch, ch.min()), low, t)
    k = max(3, int(round(max(ch.shape) / 80)) | 1)
    fg = cv2.morphologyEx(
        fg.astype(np.uint8), cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    )
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return ndi.binary_fill_holes(fg.astype(bool))


def score_components(
    work: WorkImage,
    fg: np.ndarray,
    channel: np.ndarray,
    name: str,
    min_area_frac: float = 0.002,
    centre_sigma: float = 0.45,
) -> list[Proposal]:
    """Connected components of ``fg`` -> proposals ranked by score (best first).

    score = (1 - odd colour) * solidity^p * contrast * sqrt(area fraction) * exp(-d^2 / (2 sigma^2))
    * (1 - 2 * border share), where odd colour is the share of the component's pixels with a
    colour lesions rarely have (1 when its median colour is such), solidity its area over its
    convex hull's (lesions are compact, blushes and ink strokes are not),
    contrast is the channel's mean inside minus its mean in a ring around the component (in
    channel units, divided by the channel's spread over valid pixels), d the distance of the
    component's centroid from the image centre in half-width / half-height units, and border share
    the fraction of the frame's perimeter that the component touches.
    """
    h, w = fg.shape
    n, labels, stats, cents = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    spread = float(np.std(channel[work.valid])) + 1e-6
    sx, sy = work.scale_xy
    H, W = work.original_size
    out: list[Proposal] = []
    strong = strong_colour(work.lab)
    perimeter = 2 * (h + w)
    for i in range(1, n):
        area = stats[i, cv2.CC_STAT_AREA]
        if area < min_area_frac * h * w:
            continue
        comp = labels == i
        x, y, bw, bh = stats[i, :4]
        pad = max(3, int(0.15 * max(bw, bh)))
        x0, y0, x1, y1 = (
            max(0, x - pad),
            max(0, y - pad),
            min(w, x + bw + pad),
            min(h, y + bh + pad),
        )
        sub = comp[y0:y1, x0:x1]
        ring = ~sub & work.valid[y0:y1, x0:x1] & ~fg[y0:y1, x0:x1]
        inside = channel[y0:y1, x0:x1][sub].mean()
        outside = (
            channel[y0:y1, x0:x1][ring].mean()
            if ring.any()
            else float(np.median(channel[work.valid]))
        )
        contrast_abs = float(inside - outside)
        contrast = max(0.0, contrast_abs / spread)
        cx, cy = cents[i]
        d = np.hypot((cx - w / 2) / (w / 2), (cy - h / 2) / (h / 2))
        touch = (
            comp[0, :].sum() + comp[-1, :].sum() + comp[:, 0].sum() + comp[:, -1].sum()
        ) / perimeter
        odd = (
            1.0
            if strong_colour(np.median(work.lab[comp], axis=0)[None, None])[0, 0]
            else float(strong[comp].mean())
        )
        hull = cv2.convexHull(cv2.findNonZero(comp.astype(np.uint8)))
        solidity = float(area / max(1.0, cv2.contourArea(hull)))
        score = (
            (1.0 - odd)
            * solidity**SOLIDITY_POWER
            * contrast
            * np.sqrt(area / (h * w))
            * np.exp(-(d**2) / (2 * centre_sigma**2))
            * max(0.0, 1 - 2 * touch)
        )
        box = np.array([x / sx, y / sy, (x + bw) / sx, (y + bh) / sy], dtype=np.float64)
        box = np.clip(box, 0, [W, H, W, H])
        feats = {
            "contrast": round(contrast_abs, 3),
            "contrast_rel": round(float(contrast), 3),
            "area_frac": round(float(area / (h * w)), 5),
            "centre_distance": round(float(d), 3),
            "border_share": round(float(touch), 4),
            "odd_colour": round(float(odd), 3),
            "solidity": round(solidity, 3),
        }
        out.append(Proposal(comp, box, float(score), name, feats))
    out.sort(key=lambda p: -p.score)
    return out


def propose(
    image: np.ndarray, channels: tuple[str, ...] = ("skin_distance",), work: WorkImage | None = None
) -> list[Proposal]:
    """All classical proposals of ``image`` (``(H, W, 3)`` uint8 RGB), best first."""
    work = work or prepare(image)
    if work.valid.sum() < 0.05 * work.valid.size or min(work.valid.shape) < 16:
        return []
    props: list[Proposal] = []
    for name in channels:
        ch = contrast_channel(work, name)
        props += score_components(work, segment_channel(work, ch), ch, name)
    props.sort(key=lambda p: -p.score)
    return props
