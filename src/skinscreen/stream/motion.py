"""Global camera motion between frames, estimated on small grayscale thumbnails.

A hand-held camera mostly pans, zooms and rolls: between two frames the picture moves by a global
affine. We estimate it on thumbnails (longest side :data:`THUMB_SIDE` px) in two steps:
phase correlation (``cv2.phaseCorrelate``) gives a robust translation, which then seeds an
enhanced-correlation-coefficient fit (``cv2.findTransformECC``, affine). ECC maximises a
zero-mean normalised correlation, so it is insensitive to brightness and contrast changes; its
final correlation ``rho`` in [-1, 1] says how well the aligned thumbnails agree (content change).

Affines are ``(2, 3)`` float64 arrays mapping ``[x, y, 1]`` of one frame to the other, in *frame*
pixels unless the name says ``thumb``. ``compose(a, b)`` is "apply b, then a".
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Thumbnail longest side (px) for frame difference and motion estimation.
THUMB_SIDE = 128

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


@dataclass(frozen=True)
class Thumb:
    """A grayscale thumbnail of one frame.

    Attributes:
        image: ``(h, w)`` float32 gray levels in [0, 255].
        scale: thumbnail pixels per frame pixel.
        frame_hw: (H, W) of the frame it came from.
    """

    image: np.ndarray
    scale: float
    frame_hw: tuple[int, int]


def make_thumb(frame: np.ndarray, side: int = THUMB_SIDE) -> Thumb:
    """Gray thumbnail of an ``(H, W, 3)`` uint8 RGB frame, longest side ``side`` (INTER_AREA)."""
    h, w = frame.shape[:2]
    s = min(1.0, side / max(h, w))
    tw, th = max(8, round(w * s)), max(8, round(h * s))
    small = cv2.resize(frame, (tw, th), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return Thumb(gray, tw / w, (h, w))


def frame_difference(a: Thumb, b: Thumb) -> float:
    """Mean absolute gray-level difference (0-255) between two thumbnails of equal size."""
    return float(np.mean(np.abs(a.image - b.image)))


def to3(a: np.ndarray) -> np.ndarray:
    """``(2, 3)`` affine -> ``(3, 3)`` homogeneous matrix."""
    return np.vstack([np.asarray(a, dtype=np.float64), [0.0, 0.0, 1.0]])


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The affine "apply ``b``, then ``a``" (both ``(2, 3)``)."""
    return (to3(a) @ to3(b))[:2]


def invert(a: np.ndarray) -> np.ndarray:
    """Inverse of a ``(2, 3)`` affine."""
    return cv2.invertAffineTransform(np.asarray(a, dtype=np.float64))


def _thumb_matrix(scale: float) -> np.ndarray:
    """Frame -> thumbnail pixel mapping (pixel centres aligned, as INTER_AREA resizes)."""
    o = 0.5 * scale - 0.5
    return np.array([[scale, 0.0, o], [0.0, scale, o], [0.0, 0.0, 1.0]])


def thumb_to_frame(a_thumb: np.ndarray, scale: float) -> np.ndarray:
    """An affine between two thumbnails (same ``scale``) -> the same motion in frame pixels."""
    t = _thumb_matrix(scale)
    return (np.linalg.inv(t) @ to3(a_thumb) @ t)[:2]


def frame_to_thumb(a: np.ndarray, scale: float) -> np.ndarray:
    """An affine between two frames -> the same motion in thumbnail pixels."""
    t = _thumb_matrix(scale)
    return (t @ to3(a) @ np.linalg.inv(t))[:2]


def affine_scale(a: np.ndarray) -> float:
    """Isotropic zoom factor of an affine: sqrt(|det A|)."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(a)[:, :2]))))


def affine_rotation_deg(a: np.ndarray) -> float:
    """Rotation angle (degrees, counter-clockwise in image display) of an affine's linear part."""
    a = np.asarray(a)
    return float(np.degrees(np.arctan2(a[0, 1] - a[1, 0], a[0, 0] + a[1, 1])))


def affine_shift(a: np.ndarray, size_hw: tuple[int, int]) -> float:
    """How far (frame pixels) the frame centre moves under ``a``."""
    h, w = size_hw
    c = np.array([w / 2.0, h / 2.0, 1.0])
    return float(np.hypot(*(np.asarray(a) @ c - c[:2])))


def map_points(points: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Apply a ``(2, 3)`` affine to ``(N, 2)`` ``[x, y]`` points."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return p @ np.asarray(a)[:, :2].T + np.asarray(a)[:, 2]


def map_box(box: np.ndarray, a: np.ndarray) -> np.ndarray:
    """XYXY box ``(4,)`` -> the XYXY box around its four corners mapped by ``a``."""
    x0, y0, x1, y1 = box
    pts = map_points(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]), a)
    return np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()])


def map_box_ellipse(box: np.ndarray, a: np.ndarray) -> np.ndarray:
    """XYXY box ``(4,)`` -> the box around the *ellipse inscribed in it* mapped by ``a``.

    Mapping a box's corners and boxing them inflates it under rotation (by up to 41% at 45
    degrees), and repeated mapping compounds that. A lesion is closer to the ellipse inscribed in
    its box: the mapped ellipse's box keeps the size under rotation and scales with zoom.
    """
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64)
    c = map_points(np.array([[(x0 + x1) / 2, (y0 + y1) / 2]]), a)[0]
    m = np.asarray(a, dtype=np.float64)[:, :2]
    rx, ry = (x1 - x0) / 2, (y1 - y0) / 2
    hx = float(np.hypot(m[0, 0] * rx, m[0, 1] * ry))
    hy = float(np.hypot(m[1, 0] * rx, m[1, 1] * ry))
    return np.array([c[0] - hx, c[1] - hy, c[0] + hx, c[1] + hy])


def warp(
    array: np.ndarray, a: np.ndarray, size_hw: tuple[int, int], *, nearest: bool = False
) -> np.ndarray:
    """Warp an ``(h, w)`` map with affine ``a`` (source -> destination) onto an ``(H, W)`` grid.

    Outside the source the result is 0 (bilinear, or nearest for label maps).
    """
    h, w = size_hw
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.warpAffine(
        array, np.asarray(a, dtype=np.float64), (w, h), flags=flags,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )  # fmt: skip


def phase_shift(a: Thumb, b: Thumb) -> tuple[float, float, float]:
    """Translation (dx, dy) in *thumbnail* pixels that moves ``a``'s content onto ``b``'s.

    Returns ``(dx, dy, response)``; ``response`` (0-1) is the height of the correlation peak.
    """
    win = _hann(a.image.shape)
    # cv2.phaseCorrelate windows its inputs in place: give it copies
    (dx, dy), response = cv2.phaseCorrelate(a.image.copy(), b.image.copy(), win)
    return float(dx), float(dy), float(response)


_HANN: dict[tuple[int, int], np.ndarray] = {}


def _hann(shape: tuple[int, int]) -> np.ndarray:
    if shape not in _HANN:
        _HANN[shape] = cv2.createHanningWindow(shape[::-1], cv2.CV_32F)
    return _HANN[shape]


def ecc_affine(
    template: Thumb,
    image: Thumb,
    init_thumb: np.ndarray,
    *,
    iterations: int = 40,
    eps: float = 1e-4,
) -> tuple[np.ndarray | None, float]:
    """Refine the thumbnail affine ``template -> image`` by ECC; ``(None, 0.0)`` when it fails.

    Returns ``(affine_thumb (2, 3), rho)`` where ``rho`` is ECC's final correlation coefficient
    over the overlapping pixels.
    """
    warp_m = np.asarray(init_thumb, dtype=np.float32).copy()
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, iterations, eps)
    try:
        rho, warp_m = cv2.findTransformECC(
            template.image, image.image, warp_m, cv2.MOTION_AFFINE, criteria, None, 3
        )
    except cv2.error:
        return None, 0.0
    if not np.isfinite(warp_m).all():
        return None, 0.0
    # ECC's warp maps template coordinates to image coordinates
    return warp_m.astype(np.float64), float(rho)


@dataclass(frozen=True)
class MotionEstimate:
    """Motion of the current frame relative to a reference (key) frame.

    Attributes:
        affine: ``(2, 3)`` reference frame -> current frame (frame pixels).
        rho: ECC correlation of the key and current thumbnails after alignment (1 = identical
            content); 0 when the key could not be aligned directly (dead reckoning).
        refined: whether the key frame was aligned directly onto the current one.
        step_shift: translation (frame px) since the previous frame from phase correlation.
        step_ok: whether ECC aligned the previous frame onto the current one (else the step is
            phase correlation's translation only).
    """

    affine: np.ndarray
    rho: float
    refined: bool
    step_shift: tuple[float, float]
    step_ok: bool = True


def overlap_fraction(a_thumb: np.ndarray, size_hw: tuple[int, int]) -> float:
    """Share of a ``size_hw`` frame that stays inside the frame after the affine ``a_thumb``."""
    h, w = size_hw
    rect = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    moved = map_points(rect, a_thumb).astype(np.float32)
    area, _ = cv2.intersectConvexConvex(rect, moved)
    return float(area) / float(w * h)


def _corner_gap(a: np.ndarray, b: np.ndarray, size_hw: tuple[int, int]) -> float:
    h, w = size_hw
    rect = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    return float(np.abs(map_points(rect, a) - map_points(rect, b)).max())


def _sane(a: np.ndarray | None) -> bool:
    return a is not None and 0.5 <= affine_scale(a) <= 2.0


def estimate_motion(
    key: Thumb,
    prev: Thumb,
    cur: Thumb,
    key_to_prev: np.ndarray,
    *,
    min_overlap: float = 0.3,
    max_gap: float = 4.0,
    min_step_rho: float = 0.85,
    max_step_linear: float = 0.08,
) -> MotionEstimate:
    """Affine key -> current frame (frame pixels).

    1. Phase correlation gives the translation previous -> current; after ``key_to_prev`` it
       seeds the key -> current estimate.
    2. When the key frame still overlaps the current one by ``min_overlap``, ECC aligns the key
       thumbnail onto the current one directly from that seed (no drift accumulates); it is
       kept if it lands within ``max_gap`` thumbnail pixels of the seed at every corner.
    3. Otherwise (the key is far away, e.g. the lesion left the view) the step previous ->
       current is refined by ECC instead (the two frames overlap almost entirely) and chained
       after ``key_to_prev``: dead reckoning, ``refined=False``, ``rho=0``. On weakly textured
       skin ECC can slide into a wrong zoom or shear while phase correlation stays right, so the
       ECC step is kept only if its correlation reaches ``min_step_rho``, its linear part stays
       within ``max_step_linear`` of the identity (a hand-held camera zooms and rolls a few
       percent or degrees per frame) and it agrees with phase correlation at the centre. When
       the key still overlaps, step 2 is retried from this better seed (fast zoom or roll).
    """
    s = cur.scale
    hw = cur.image.shape
    dx, dy, _ = phase_shift(prev, cur)
    shift = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
    shift_frame = (dx / s, dy / s)
    k2p = frame_to_thumb(key_to_prev, s)
    seed = compose(shift, k2p)
    if overlap_fraction(seed, hw) >= min_overlap:
        refined, rho = ecc_affine(key, cur, seed)
        if _sane(refined) and _corner_gap(refined, seed, hw) <= max_gap:
            return MotionEstimate(thumb_to_frame(refined, s), rho, True, shift_frame, True)
    step, step_rho = ecc_affine(prev, cur, shift)
    h, w = hw
    centre = np.array([[w / 2.0, h / 2.0]])
    step_ok = (
        _sane(step)
        and step_rho >= min_step_rho
        and float(np.abs(step[:, :2] - np.eye(2)).max()) <= max_step_linear
        and float(np.abs(map_points(centre, step) - map_points(centre, shift)).max()) <= 1.5
    )
    if not step_ok:
        return MotionEstimate(thumb_to_frame(seed, s), 0.0, False, shift_frame, False)
    seed = compose(step, k2p)
    if overlap_fraction(seed, hw) >= min_overlap:
        # the phase seed missed a fast zoom or roll: align the key again from the better seed
        refined, rho = ecc_affine(key, cur, seed)
        if _sane(refined) and _corner_gap(refined, seed, hw) <= max_gap:
            return MotionEstimate(thumb_to_frame(refined, s), rho, True, shift_frame, True)
    return MotionEstimate(thumb_to_frame(seed, s), 0.0, False, shift_frame, True)
