"""Logits -> clean lesion mask -> contour polygon and SVG path.

All functions are pure and work in *original* photo pixel space: masks are ``(H, W)`` bool,
polygons ``(N, 2)`` float arrays of ``[x, y]`` points.
"""

from __future__ import annotations

import cv2
import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function ``0.5 * (1 + tanh(x / 2))``, float32 (a new array;
    computed in place on one buffer: photo-sized maps are re-computed on every prompt)."""
    y = np.multiply(x, np.float32(0.5), dtype=np.float32)
    np.tanh(y, out=y)
    y += np.float32(1.0)
    y *= np.float32(0.5)
    return y


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep only the largest 8-connected foreground component of a ``(H, W)`` bool mask."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask.astype(bool)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == biggest


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill enclosed background holes of a ``(H, W)`` bool mask (ISIC masks have none).

    Same result as ``scipy.ndimage.binary_fill_holes`` (background pixels not 4-connected to the
    border become foreground), computed with one OpenCV flood fill from outside the image:
    about 100x faster on 1024 x 680 masks (0.7 ms instead of 40-100 ms), which matters for
    re-prompting.
    """
    m = np.pad(mask.astype(np.uint8), 1)
    h, w = m.shape
    cv2.floodFill(m, np.zeros((h + 2, w + 2), np.uint8), (0, 0), 2, flags=4)
    return m[1:-1, 1:-1] != 2


def clean_mask(mask: np.ndarray, *, largest: bool = True, holes: bool = True) -> np.ndarray:
    """Largest component then hole filling, as the model spec's post-processing prescribes.

    Both steps run on the bounding rectangle of the foreground only (``cv2.boundingRect``), which
    gives the same mask as on the whole photo: components lie inside it by definition, and a
    background pixel inside it reaches the photo border exactly when it reaches the rectangle's
    border (everything outside the rectangle is background and touches the photo border). A
    lesion covers a fraction of the photo, so this is several times faster (re-prompting).
    """
    m = np.ascontiguousarray(mask, dtype=bool)
    x, y, w, h = cv2.boundingRect(m.view(np.uint8))
    out = np.zeros(m.shape, dtype=bool)
    if w == 0 or h == 0:
        return out
    crop = m[y : y + h, x : x + w]
    if largest:
        crop = largest_component(crop)
    if holes:
        crop = fill_holes(crop)
    out[y : y + h, x : x + w] = crop
    return out


def outer_contour(mask: np.ndarray, *, tolerance: float = 1.0) -> np.ndarray:
    """Outer boundary of the largest region as a simplified ``(N, 2)`` float polygon ``[x, y]``.

    Simplification is Douglas-Peucker (``cv2.approxPolyDP``) with ``tolerance`` in pixels,
    scaled up for large masks (0.15% of the perimeter) so point counts stay small. Returns an
    empty ``(0, 2)`` array for an empty mask.
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return np.zeros((0, 2), dtype=np.float64)
    c = max(contours, key=cv2.contourArea)
    eps = max(tolerance, 0.0015 * cv2.arcLength(c, True))
    approx = cv2.approxPolyDP(c, eps, True)
    return approx.reshape(-1, 2).astype(np.float64)


def svg_path(polygon: np.ndarray, *, decimals: int = 1) -> str:
    """SVG path data ``"M x y L x y ... Z"`` for an ``(N, 2)`` polygon ``[x, y]`` (empty -> "")."""
    if len(polygon) == 0:
        return ""
    fmt = f"{{:.{decimals}f}}"
    pts = [f"{fmt.format(x)} {fmt.format(y)}" for x, y in polygon]
    return "M " + " L ".join(pts) + " Z"
