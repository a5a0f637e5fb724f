"""Photo and prompt perturbations for the robustness suite.

Every perturbation is a :class:`Perturbation`: a name, a group and a pure function that maps an
``(H, W, 3)`` uint8 RGB photo and its ``(H, W)`` bool expert mask to a new pair (geometric
perturbations move the mask with the photo; photometric ones leave it alone). Prompt
perturbations (box jitter, loose boxes) leave the photo alone and change the box instead
(``box_jitter`` / ``box_margin``). All are deterministic; box jitter is seeded per image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from skinscreen.errors import SkinscreenError

Pair = tuple[np.ndarray, np.ndarray]


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def exposure(image: np.ndarray, factor: float) -> np.ndarray:
    """Scale the light reaching the sensor by ``factor`` (in linear sRGB), clip, re-encode."""
    lin = _srgb_to_linear(image.astype(np.float32) / 255.0) * factor
    return _to_uint8(_linear_to_srgb(lin))


def gamma(image: np.ndarray, g: float) -> np.ndarray:
    """Tone curve ``out = in ** g`` on [0, 1] (g > 1 darkens mid-tones, g < 1 lifts them)."""
    return _to_uint8(np.power(image.astype(np.float32) / 255.0, g))


#: linear-RGB gains of two illuminants relative to daylight (about 3000 K tungsten and
#: 10000 K overcast shade, normalised so the strongest channel is 1)
WARM_GAINS = (1.0, 0.78, 0.52)
COOL_GAINS = (0.78, 0.88, 1.0)


def colour_cast(image: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    """Von Kries cast: multiply linear R, G, B by ``gains`` (a camera without white balance)."""
    lin = _srgb_to_linear(image.astype(np.float32) / 255.0) * np.asarray(gains, np.float32)
    return _to_uint8(_linear_to_srgb(lin))


def blur(image: np.ndarray, sigma_frac: float) -> np.ndarray:
    """Gaussian blur with sigma = ``sigma_frac`` x the longest side (defocus / motion proxy)."""
    s = max(0.3, sigma_frac * max(image.shape[:2]))
    return cv2.GaussianBlur(image, (0, 0), s)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Re-encode as JPEG at ``quality`` (1-100) with OpenCV and decode again."""
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise SkinscreenError("JPEG re-encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def rotate(image: np.ndarray, mask: np.ndarray, degrees: float) -> Pair:
    """Rotate photo and mask about the centre, counter-clockwise.

    Multiples of 90 degrees are exact (``np.rot90``: the frame turns with them). Other angles
    keep the frame size; the photo's new corners are filled by reflecting the border
    (``BORDER_REFLECT_101``), the mask's with background.
    """
    k = degrees / 90.0
    if float(k).is_integer():
        k = int(k) % 4
        return np.ascontiguousarray(np.rot90(image, k)), np.ascontiguousarray(np.rot90(mask, k))
    h, w = mask.shape
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    img = cv2.warpAffine(
        image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    msk = cv2.warpAffine(mask.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    return img, msk.astype(bool)


def flip(image: np.ndarray, mask: np.ndarray, axis: int) -> Pair:
    """Mirror photo and mask: ``axis=1`` left-right, ``axis=0`` top-bottom."""
    return np.ascontiguousarray(np.flip(image, axis)), np.ascontiguousarray(np.flip(mask, axis))


@dataclass(frozen=True)
class Perturbation:
    """One condition of the robustness suite.

    Attributes:
        name: short id used in tables (``exposure-0.5``, ``jitter-10`` ...).
        group: ``reference``, ``exposure``, ``colour``, ``blur``, ``jpeg``, ``geometry`` or
            ``prompt``.
        description: one line for the report.
        fn: ``(image, mask) -> (image, mask)``; identity for prompt conditions.
        photometric: changes colours/tones (so colour constancy may matter).
        box_jitter: move each side of the ground-truth box by a seeded uniform random amount in
            [-box_jitter, +box_jitter] of the box size (prompt conditions only).
        box_margin: grow the ground-truth box by this fraction per side (loose box).
    """

    name: str
    group: str
    description: str
    fn: Callable[[np.ndarray, np.ndarray], Pair] | None = None
    photometric: bool = False
    box_jitter: float = 0.0
    box_margin: float = 0.0

    @property
    def changes_image(self) -> bool:
        return self.fn is not None

    def apply(self, image: np.ndarray, mask: np.ndarray) -> Pair:
        """Perturbed ``(image (H', W', 3) uint8, mask (H', W') bool)``."""
        if self.fn is None:
            return image, mask
        return self.fn(image, mask)


def _photo(f: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray, np.ndarray], Pair]:
    return lambda image, mask: (f(image), mask)


CONDITIONS: tuple[Perturbation, ...] = (
    Perturbation("original", "reference", "the photo as it is, tight ground-truth box"),
    Perturbation(
        "exposure-0.5",
        "exposure",
        "one stop under-exposed (linear light x 0.5)",
        _photo(lambda x: exposure(x, 0.5)),
        True,
    ),
    Perturbation(
        "exposure-2.0",
        "exposure",
        "one stop over-exposed (linear light x 2, clipped)",
        _photo(lambda x: exposure(x, 2.0)),
        True,
    ),
    Perturbation(
        "gamma-0.6",
        "exposure",
        "tone curve lifted (gamma 0.6)",
        _photo(lambda x: gamma(x, 0.6)),
        True,
    ),
    Perturbation(
        "gamma-1.6",
        "exposure",
        "tone curve darkened (gamma 1.6)",
        _photo(lambda x: gamma(x, 1.6)),
        True,
    ),
    Perturbation(
        "cast-warm",
        "colour",
        "warm indoor light, about 3000 K, no white balance",
        _photo(lambda x: colour_cast(x, WARM_GAINS)),
        True,
    ),
    Perturbation(
        "cast-cool",
        "colour",
        "cool shade daylight, about 10000 K, no white balance",
        _photo(lambda x: colour_cast(x, COOL_GAINS)),
        True,
    ),
    Perturbation(
        "blur-0.5",
        "blur",
        "Gaussian blur, sigma 0.5% of the longest side",
        _photo(lambda x: blur(x, 0.005)),
    ),
    Perturbation(
        "blur-1.0",
        "blur",
        "Gaussian blur, sigma 1% of the longest side",
        _photo(lambda x: blur(x, 0.01)),
    ),
    Perturbation("jpeg-30", "jpeg", "JPEG quality 30", _photo(lambda x: jpeg(x, 30))),
    Perturbation("jpeg-10", "jpeg", "JPEG quality 10", _photo(lambda x: jpeg(x, 10))),
    Perturbation("rotate-90", "geometry", "rotated 90 degrees", lambda x, m: rotate(x, m, 90)),
    Perturbation(
        "rotate-15",
        "geometry",
        "rotated 15 degrees, reflected corners",
        lambda x, m: rotate(x, m, 15),
    ),
    Perturbation("flip-h", "geometry", "mirrored left-right", lambda x, m: flip(x, m, 1)),
    Perturbation("flip-v", "geometry", "mirrored top-bottom", lambda x, m: flip(x, m, 0)),
    Perturbation(
        "jitter-5", "prompt", "each box side moved by up to 5% of the box size", box_jitter=0.05
    ),
    Perturbation(
        "jitter-10", "prompt", "each box side moved by up to 10% of the box size", box_jitter=0.10
    ),
    Perturbation(
        "jitter-20", "prompt", "each box side moved by up to 20% of the box size", box_jitter=0.20
    ),
    Perturbation("loose-10", "prompt", "box 10% larger on every side", box_margin=0.10),
    Perturbation("loose-25", "prompt", "box 25% larger on every side", box_margin=0.25),
)

BY_NAME: dict[str, Perturbation] = {c.name: c for c in CONDITIONS}


def select(names: str | None) -> list[Perturbation]:
    """Conditions by comma-separated names (``None`` or ``"all"``: every one); ``original`` is
    always included first because every other condition is compared with it."""
    if names is None or names.strip() in ("", "all"):
        return list(CONDITIONS)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in BY_NAME]
    if unknown:
        raise SkinscreenError(
            f"unknown condition(s) {', '.join(unknown)}: choose from {', '.join(BY_NAME)}"
        )
    return [BY_NAME["original"]] + [BY_NAME[n] for n in wanted if n != "original"]
