"""Synthetic re-takes with known truth, for tests and the noise-floor simulation.

:func:`grow_lesion` enlarges or shrinks a lesion by a known area factor with a mask-guided radial
warp (the skin far from the lesion stays put); :func:`retake` then re-photographs the result
with a known homography, lighting change, blur and JPEG compression.
Photos ``(H, W, 3)`` uint8 RGB, masks ``(H, W)`` bool.
"""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage as ndi


def grow_lesion(
    photo: np.ndarray, mask: np.ndarray, area_factor: float
) -> tuple[np.ndarray, np.ndarray]:
    """Scale the lesion radially about its centroid so its area is about ``area_factor`` times
    the original; the warp fades out over one lesion radius outside it. Returns the new photo and
    the identically warped mask (whose area is the truth)."""
    ys, xs = np.nonzero(mask)
    cy, cx = ys.mean(), xs.mean()
    r = math.sqrt(mask.sum() / math.pi)
    k = math.sqrt(area_factor)
    h, w = mask.shape
    # distance (px) outside the GROWN lesion decides the blend: 1 inside, 0 beyond one radius
    grown_guess = ndi.zoom(mask.astype(np.float32), 1, order=0) > 0.5
    dist = ndi.distance_transform_edt(~grown_guess)
    reach = r * max(k, 1.0)
    t = np.clip(1.0 - (dist - (k - 1.0) * r) / reach, 0.0, 1.0) if k > 1 else None
    if t is None:
        t = np.clip(1.0 - dist / reach, 0.0, 1.0)
    t = t * t * (3 - 2 * t)  # smoothstep
    scale = 1.0 + (k - 1.0) * t  # local zoom factor
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    # destination pixel p samples the source at c + (p - c) / scale(p)
    mx = (cx + (gx - cx) / scale).astype(np.float32)
    my = (cy + (gy - cy) / scale).astype(np.float32)
    out = cv2.remap(photo, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    m = cv2.remap(mask.astype(np.float32), mx, my, cv2.INTER_LINEAR) >= 0.5
    return out, m


def similarity_matrix(
    size_hw: tuple[int, int], angle_deg: float, zoom: float, shift_xy=(0.0, 0.0), tilt=0.0
) -> np.ndarray:
    """``(3, 3)`` homography: rotate ``angle_deg`` (counter-clockwise) and zoom about the photo's
    centre, shift by ``shift_xy`` px, and add a perspective ``tilt`` (1e-4 per px is mild)."""
    h, w = size_hw
    m = np.vstack([cv2.getRotationMatrix2D((w / 2, h / 2), angle_deg, zoom), [0, 0, 1]])
    m[0, 2] += shift_xy[0]
    m[1, 2] += shift_xy[1]
    if tilt:
        p = np.array([[1, 0, 0], [0, 1, 0], [tilt, 0.5 * tilt, 1]])
        c = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]])
        m = m @ np.linalg.inv(c) @ p @ c
        m /= m[2, 2]
    return m


def retake(
    photo: np.ndarray,
    matrix: np.ndarray,
    *,
    gain: float = 1.0,
    gamma: float = 1.0,
    tint=(1.0, 1.0, 1.0),
    blur_sigma: float = 0.0,
    jpeg_quality: int | None = None,
) -> np.ndarray:
    """Re-photograph ``photo`` through ``matrix`` (same output size), then change the light
    (``gain``, ``gamma``, per-channel ``tint``), defocus (Gaussian ``blur_sigma`` px) and compress
    (JPEG ``jpeg_quality``)."""
    h, w = photo.shape[:2]
    out = cv2.warpPerspective(
        photo, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    f = out.astype(np.float32) / 255.0
    f = np.clip(f * gain * np.asarray(tint, np.float32), 0, 1) ** gamma
    out = (f * 255 + 0.5).astype(np.uint8)
    if blur_sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur_sigma)
    if jpeg_quality is not None:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=int(jpeg_quality))
        out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return out
