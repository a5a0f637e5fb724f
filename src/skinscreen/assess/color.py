"""Colour: CIELAB conversion, Shades-of-Gray colour constancy and the six dermoscopic colours.

All images are ``(H, W, 3)`` uint8 sRGB arrays; CIELAB values use the D65 white point (the
scikit-image defaults): ``L*`` in [0, 100], ``a*`` and ``b*`` roughly in [-128, 127].
"""

from __future__ import annotations

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

#: The six colours of dermoscopic colour analysis (Stolz's ABCD rule, the "C" criterion), in the
#: order the report lists them.
DERMOSCOPIC_COLORS: tuple[str, ...] = (
    "white",
    "red",
    "light_brown",
    "dark_brown",
    "blue_gray",
    "black",
)

#: Prototype CIELAB colour of each dermoscopic colour (our own choice, documented in
#: docs/features.md). A pixel belongs to the nearest prototype by CIEDE2000 colour difference.
COLOR_PROTOTYPES_LAB: dict[str, tuple[float, float, float]] = {
    "white": (88.0, 1.0, 5.0),
    "red": (45.0, 50.0, 14.0),
    "light_brown": (55.0, 17.0, 28.0),
    "dark_brown": (30.0, 14.0, 16.0),
    "blue_gray": (50.0, 0.0, -6.0),
    "black": (15.0, 3.0, 2.0),
}

#: Display colour (RGB) of each class in the colour-class map. ``skin`` and ``other`` are the two
#: classes that are not dermoscopic colours.
COLOR_DISPLAY_RGB: dict[str, tuple[int, int, int]] = {
    "white": (250, 250, 250),
    "red": (230, 40, 40),
    "light_brown": (200, 140, 80),
    "dark_brown": (110, 60, 25),
    "blue_gray": (100, 140, 200),
    "black": (15, 15, 15),
    "skin": (255, 220, 190),
    "other": (150, 150, 150),
}

#: Class names in label order: the six colours, then ``skin`` (nearest to the surrounding skin's
#: own colour) and ``other`` (farther than :data:`COLOR_MAX_DELTA_E` from every prototype).
COLOR_CLASSES: tuple[str, ...] = (*DERMOSCOPIC_COLORS, "skin", "other")

#: Pixels farther than this CIEDE2000 difference from every prototype are ``other``.
COLOR_MAX_DELTA_E = 25.0
#: A colour is *present* when at least this fraction of the lesion's pixels belong to it.
COLOR_MIN_FRACTION = 0.05
#: Shades-of-Gray Minkowski norm (p = 6, the value Barata et al. 2015 recommend for dermoscopy).
SHADES_OF_GRAY_P = 6.0


def to_lab(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 sRGB -> ``(H, W, 3)`` float32 CIELAB (D65)."""
    return rgb2lab(image).astype(np.float32)


def illuminant_shades_of_gray(
    image: np.ndarray, p: float = SHADES_OF_GRAY_P, mask: np.ndarray | None = None
) -> np.ndarray:
    """Estimate the illuminant colour of ``image`` by the Shades-of-Gray hypothesis.

    ``e_c = (mean(I_c ** p)) ** (1 / p)`` per channel (Finlayson & Trezzi, 2004), over the pixels
    of ``mask`` ``(H, W)`` bool when given. Returns the unit-norm RGB vector ``(3,)``.
    """
    x = image.astype(np.float64) / 255.0
    pix = x[mask] if mask is not None else x.reshape(-1, 3)
    e = np.power(np.mean(np.power(pix, p), axis=0), 1.0 / p)
    n = float(np.linalg.norm(e))
    if n <= 1e-12:
        return np.full(3, 1.0 / np.sqrt(3.0))
    return e / n


def color_cast_deg(illuminant: np.ndarray) -> float:
    """Angle in degrees between an RGB illuminant ``(3,)`` and neutral grey ``(1, 1, 1)``."""
    e = np.asarray(illuminant, dtype=np.float64)
    c = float(e.sum() / (np.linalg.norm(e) * np.sqrt(3.0)))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def shades_of_gray(image: np.ndarray, p: float = SHADES_OF_GRAY_P) -> np.ndarray:
    """Colour-constancy correction: divide out the Shades-of-Gray illuminant.

    Each channel is multiplied by ``1 / (sqrt(3) * e_c)`` (a von Kries diagonal transform that maps
    the estimated illuminant to neutral grey; Barata et al., IEEE JBHI 2015). Returns a new
    ``(H, W, 3)`` uint8 image, clipped to [0, 255].
    """
    e = illuminant_shades_of_gray(image, p)
    gain = 1.0 / (np.sqrt(3.0) * np.maximum(e, 1e-6))
    out = image.astype(np.float32) * gain.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def classify_colors(lab: np.ndarray, skin_lab: np.ndarray | None = None) -> np.ndarray:
    """Label each CIELAB colour with its nearest class.

    Args:
        lab: ``(N, 3)`` CIELAB values.
        skin_lab: ``(3,)`` CIELAB colour of the surrounding skin; when given it is an extra
            ``skin`` prototype, so skin-coloured pixels inside the mask are not counted as a
            dermoscopic colour.

    Returns:
        ``(N,)`` int8 indices into :data:`COLOR_CLASSES` (``other`` when the nearest prototype is
        farther than :data:`COLOR_MAX_DELTA_E`).
    """
    lab = np.asarray(lab, dtype=np.float64).reshape(-1, 3)
    protos = [np.array(COLOR_PROTOTYPES_LAB[c]) for c in DERMOSCOPIC_COLORS]
    if skin_lab is not None:
        protos.append(np.asarray(skin_lab, dtype=np.float64))
    dist = np.stack([deltaE_ciede2000(lab, np.broadcast_to(p, lab.shape)) for p in protos], axis=1)
    labels = np.argmin(dist, axis=1).astype(np.int8)
    labels[dist[np.arange(len(lab)), labels] > COLOR_MAX_DELTA_E] = COLOR_CLASSES.index("other")
    return labels


def color_fractions(labels: np.ndarray) -> dict[str, float]:
    """Fraction of the labelled pixels ``(N,)`` in each of :data:`COLOR_CLASSES`."""
    n = max(int(labels.size), 1)
    counts = np.bincount(labels.astype(np.int64), minlength=len(COLOR_CLASSES))
    return {name: float(counts[i]) / n for i, name in enumerate(COLOR_CLASSES)}


def delta_e(lab1: np.ndarray, lab2: np.ndarray) -> float:
    """CIEDE2000 colour difference between two CIELAB colours ``(3,)``."""
    return float(deltaE_ciede2000(np.asarray(lab1, float), np.asarray(lab2, float)))
