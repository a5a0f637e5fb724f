"""Artefact masks for automatic localisation: hair and ruler marks, vignette corners, stickers, ink.

All functions work on a small working copy of the photo (``(h, w, 3)`` uint8 RGB, typically the
longest side at 320 px) and return ``(h, w)`` bool masks in that same pixel grid (HW order).
They are deliberately classical (OpenCV / scikit-image building blocks, no learning) so that they
behave the same on photos unlike any we tuned on.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage as ndi


def to_lab(image: np.ndarray) -> np.ndarray:
    """``(h, w, 3)`` uint8 RGB -> ``(h, w, 3)`` float32 CIELAB (L in [0, 100], a/b about +-128)."""
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def hair_mask(image: np.ndarray) -> np.ndarray:
    """Thin dark lines (hairs, ruler ticks, thin ink strokes) as a ``(h, w)`` bool mask.

    Black-hat (closing minus image) of the luminance with an elliptical kernel about 1/40 of the
    image's longest side, thresholded at 12 grey levels, then dilated by one pixel. Compact dark
    blobs wider than the kernel (the lesion itself) are not picked up.
    """
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    k = max(5, int(round(max(grey.shape) / 40)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    blackhat = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, kernel)
    mask = blackhat > 12
    # keep elongated pieces only: a hair is long and thin, lesion texture is blotchy
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, dtype=bool)
    for i in range(1, n):
        w, h, area = (
            stats[i, cv2.CC_STAT_WIDTH],
            stats[i, cv2.CC_STAT_HEIGHT],
            stats[i, cv2.CC_STAT_AREA],
        )
        keep[i] = max(w, h) >= 2 * k and area < 0.6 * w * h
    mask = keep[labels]
    return cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def remove_hair(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Inpaint hair / ruler pixels (``mask`` or :func:`hair_mask`) with cv2.inpaint (Telea)."""
    if mask is None:
        mask = hair_mask(image)
    if not mask.any():
        return image
    return cv2.inpaint(image, mask.astype(np.uint8), 3, cv2.INPAINT_TELEA)


def radial_profile(lab: np.ndarray, n_rings: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Illumination fall-off of the frame as a non-increasing function of the distance to centre.

    The distance ``r`` of each pixel to the image centre is measured in units of half the longest
    side (dermoscope field stops are circles). The median L* of each of ``n_rings`` rings is made
    non-increasing outward with a running maximum taken from the rim inward, so a dark lesion in
    the middle cannot pull the profile down (it would be "normalised away" otherwise), while a
    real vignette (darker toward the rim) is kept.

    Returns:
        r: ``(h, w)`` float32 distances; profile: ``(h, w)`` float32 expected skin L* at each pixel.
    """
    h, w = lab.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot(xx - (w - 1) / 2, yy - (h - 1) / 2) / (max(h, w) / 2)
    edges = np.linspace(0, float(r.max()) + 1e-6, n_rings + 1)
    idx = np.clip(np.digitize(r, edges) - 1, 0, n_rings - 1)
    L = lab[..., 0]
    med = np.array([np.median(L[idx == k]) if np.any(idx == k) else np.nan for k in range(n_rings)])
    med = np.where(np.isnan(med), np.nanmax(med), med)
    prof = np.maximum.accumulate(med[::-1])[::-1]
    centres = (edges[:-1] + edges[1:]) / 2
    return r, np.interp(r, centres, prof).astype(np.float32)


def correct_vignetting(
    image: np.ndarray, lab: np.ndarray, floor: float = 0.55
) -> tuple[np.ndarray, np.ndarray]:
    """Undo a radial illumination fall-off; flag what is too dark to recover.

    Gain = (brightest ring L*) / (expected L* at the pixel), applied to RGB. Pixels whose expected
    L* is below ``floor`` x the brightest ring (dark dermoscope corners), and near-black pixels
    (L* < 12) connected to the frame border, are returned as the vignette mask.

    Returns:
        rgb: ``(h, w, 3)`` uint8 corrected photo; vignette: ``(h, w)`` bool.
    """
    h, w = lab.shape[:2]
    _, prof = radial_profile(lab)
    ref = float(prof.max())
    ratio = prof / max(ref, 1e-3)
    gain = 1.0 / np.maximum(ratio, floor)
    rgb = np.clip(image.astype(np.float32) * gain[..., None], 0, 255).astype(np.uint8)
    vignette = ratio < floor
    black = (lab[..., 0] < 12).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(black, connectivity=8)
    for i in range(1, n):
        x, y, bw, bh = stats[i, :4]
        if x == 0 or y == 0 or x + bw >= w or y + bh >= h:
            vignette |= labels == i
    if vignette.any():
        vignette = cv2.dilate(vignette.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    return rgb, vignette


def strong_colour(lab: np.ndarray) -> np.ndarray:
    """Pixels whose colour skin lesions rarely have, ``(h, w)`` bool.

    CIELAB chroma C and hue angle h: C > 20 with h in (100, 345) degrees (blue, green, cyan,
    purple, magenta: ink, stickers, fabric; lesions are red-brown, h about 345-90), or vivid and
    light (C > 50 and L* > 55: orange/yellow stickers; brown lesions that saturated are darker).
    """
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    chroma = np.hypot(a, b)
    hue = np.degrees(np.arctan2(b, a)) % 360.0
    return ((chroma > 20) & (hue > 100) & (hue < 345)) | ((chroma > 50) & (L > 55))


def colour_artefact_mask(lab: np.ndarray) -> np.ndarray:
    """Stickers, ink and fabric at the edge of the frame, ``(h, w)`` bool.

    Connected regions of :func:`strong_colour` covering at least 0.2% of the frame that touch the
    frame border are artefacts (a lesion with an unusual colour in the middle of the photo is
    left alone; candidates are penalised for strong colour instead). Dilated by 3 px.
    """
    h, w = lab.shape[:2]
    mask = cv2.morphologyEx(
        strong_colour(lab).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)
    )
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = np.zeros(n, dtype=bool)
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        touches = x <= 1 or y <= 1 or x + bw >= w - 1 or y + bh >= h - 1
        keep[i] = touches and area >= 0.002 * h * w
    out = keep[labels]
    if out.any():
        out = cv2.dilate(ndi.binary_fill_holes(out).astype(np.uint8), np.ones((7, 7), np.uint8))
    return out.astype(bool)
