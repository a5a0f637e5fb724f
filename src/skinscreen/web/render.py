"""Pixel outputs for the page: mask and probability heatmap as base64 PNGs."""

from __future__ import annotations

import base64

import cv2
import numpy as np


def png_base64(image: np.ndarray) -> str:
    """Encode an ``(H, W)`` uint8 or ``(H, W, 4)`` uint8 **BGRA** array as base64 PNG."""
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:  # pragma: no cover - cv2 only fails on invalid arrays
        raise ValueError("PNG encoding failed")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def mask_png(mask: np.ndarray) -> str:
    """``(H, W)`` bool mask -> base64 PNG, mode L, 0/255, at the photo's full resolution."""
    return png_base64(np.where(mask, 255, 0).astype(np.uint8))


def heatmap_rgba(probability: np.ndarray, max_side: int) -> np.ndarray:
    """``(H, W)`` probabilities in [0, 1] -> ``(h, w, 4)`` uint8 BGRA heatmap.

    The photo-sized map is area-downscaled so its longest side is at most ``max_side`` (the page
    stretches it over the photo). Colour: OpenCV's perceptually ordered 'inferno' map;
    opacity grows with probability, and pixels below 2% are fully transparent.
    """
    h, w = probability.shape
    s = min(1.0, max_side / max(h, w))
    p = probability
    if s < 1.0:
        size = (max(1, round(w * s)), max(1, round(h * s)))
        p = cv2.resize(probability.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    p8 = np.clip(p * 255.0 + 0.5, 0, 255).astype(np.uint8)
    bgr = cv2.applyColorMap(p8, cv2.COLORMAP_INFERNO)
    alpha = np.where(p8 >= 5, (60 + p8.astype(np.float32) * (160 / 255)).astype(np.uint8), 0)
    return np.dstack([bgr, alpha.astype(np.uint8)])


def heatmap_png(probability: np.ndarray, max_side: int) -> tuple[str, list[int]]:
    """Base64 PNG of :func:`heatmap_rgba` and its ``[width, height]``."""
    rgba = heatmap_rgba(probability, max_side)
    return png_base64(rgba), [int(rgba.shape[1]), int(rgba.shape[0])]
