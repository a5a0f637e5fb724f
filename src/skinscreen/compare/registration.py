"""Register two photos of the same lesion: SIFT features, a robust similarity or homography
(RANSAC / MAGSAC++), then an ECC refinement.

Conventions: photos are ``(H, W, 3)`` uint8 RGB; the transform ``matrix`` is a ``(3, 3)``
homography mapping EARLIER photo pixels ``[x, y, 1]`` to LATER photo pixels (pixel centres at
integer coordinates, as OpenCV's ``warpPerspective`` uses them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from skinscreen.errors import SkinscreenError

#: Longer side (px) both photos are resampled to for feature matching and ECC.
WORK_SIDE = 1024
#: Lowe's ratio test threshold for SIFT matches.
RATIO = 0.75
#: RANSAC / MAGSAC inlier threshold, in working pixels.
RANSAC_THRESHOLD_PX = 3.0
#: Fewer inlier matches than this: the photos are not taken to show the same skin. Unrelated
#: dermoscopy photos rarely pass it and are then refused by the other checks (docs/compare.md).
MIN_INLIERS = 25
#: ... nor when fewer than this fraction of the ratio-test matches are inliers.
MIN_INLIER_RATIO = 0.15
#: The later photo may be zoomed in or out by at most this factor.
MAX_ZOOM = 4.0
#: The inlier matches' convex hull must cover at least this fraction of the LATER photo.
MIN_SPREAD = 0.03
#: A homography replaces the similarity only with this many times more inliers.
HOMOGRAPHY_GAIN = 1.10


class NotSameLesionError(SkinscreenError):
    """The two photos could not be registered: another lesion, or too little overlap."""


@dataclass
class Registration:
    """Result of :func:`register`. ``matrix``: ``(3, 3)`` EARLIER -> LATER photo pixels.

    ``reprojection_error_px``: RMS distance (LATER photo pixels) between the inlier matches'
    LATER points and their EARLIER points mapped by ``matrix``. ``scale``: linear zoom factor of
    the LATER photo relative to the EARLIER one (>1: the later is closer); ``rotation_deg``:
    counter-clockwise on screen. ``overlap``: fraction of the LATER photo the EARLIER one covers.
    """

    ok: bool
    method: str
    matrix: np.ndarray
    inliers: int
    matches: int
    reprojection_error_px: float
    scale: float
    rotation_deg: float
    overlap: float
    ecc: bool = False
    reason: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "method": self.method,
            "inliers": int(self.inliers),
            "reprojection_error_px": round(float(self.reprojection_error_px), 3),
            "matches": int(self.matches),
            "scale": round(float(self.scale), 4),
            "rotation_deg": round(float(self.rotation_deg), 2),
            "overlap": round(float(self.overlap), 4),
            "ecc_refined": bool(self.ecc),
            "matrix": [[round(float(v), 8) for v in row] for row in self.matrix],
            "reason": self.reason,
        }


def _to_work(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gray working image (contrast-equalised) and the ``(3, 3)`` photo -> working map."""
    h, w = image.shape[:2]
    f = min(1.0, WORK_SIDE / max(h, w))
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if f < 1.0:
        gray = cv2.resize(
            gray, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA
        )
        fx, fy = gray.shape[1] / w, gray.shape[0] / h
    else:
        fx = fy = 1.0
    # pixel centres to pixel centres: x' = (x + 0.5) f - 0.5
    t = np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5], [0, 0, 1]], np.float64)
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    return clahe.apply(gray), t


def apply_homography(matrix: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Map ``(N, 2)`` ``[x, y]`` points by a ``(3, 3)`` homography."""
    pts = np.asarray(xy, np.float64).reshape(-1, 2)
    p = np.c_[pts, np.ones(len(pts))] @ np.asarray(matrix, np.float64).T
    return p[:, :2] / p[:, 2:3]


def _decompose(matrix: np.ndarray) -> tuple[float, float]:
    """(zoom, rotation in degrees counter-clockwise on screen) of the linear part."""
    a = matrix[:2, :2] / matrix[2, 2]
    det = float(np.linalg.det(a))
    zoom = math.sqrt(abs(det)) if det > 0 else float("nan")
    rot = math.degrees(math.atan2(-(a[1, 0] - a[0, 1]) / 2, (a[0, 0] + a[1, 1]) / 2))
    return zoom, rot


def _overlap(matrix: np.ndarray, size_e: tuple[int, int], size_l: tuple[int, int]) -> float:
    """Fraction of the LATER photo covered by the EARLIER photo's mapped outline."""
    he, we = size_e
    hl, wl = size_l
    corners = np.array([[0, 0], [we - 1, 0], [we - 1, he - 1], [0, he - 1]], np.float64)
    q = apply_homography(matrix, corners).astype(np.float32)
    rect = np.array([[0, 0], [wl - 1, 0], [wl - 1, hl - 1], [0, hl - 1]], np.float32)
    try:
        area, _ = cv2.intersectConvexConvex(q, rect)
    except cv2.error:
        return 0.0
    return float(area) / float((wl - 1) * (hl - 1))


def _spread(xy: np.ndarray, size_hw: tuple[int, int]) -> float:
    """Area of the convex hull of ``(N, 2)`` points as a fraction of the photo."""
    if len(xy) < 3:
        return 0.0
    hull = cv2.convexHull(xy.astype(np.float32))
    return float(cv2.contourArea(hull)) / float(size_hw[0] * size_hw[1])


def _rms(matrix: np.ndarray, src: np.ndarray, dst: np.ndarray) -> float:
    if len(src) == 0:
        return float("inf")
    d = apply_homography(matrix, src) - dst
    return float(np.sqrt(np.mean(np.sum(d * d, axis=1))))


def _refuse(method: str, reason: str, **kw) -> Registration:
    base = dict(
        matrix=np.eye(3),
        inliers=0,
        matches=0,
        reprojection_error_px=float("nan"),
        scale=float("nan"),
        rotation_deg=float("nan"),
        overlap=0.0,
    )
    base.update(kw)
    return Registration(ok=False, method=method, reason=reason, **base)


def _feature_mask(exclude: np.ndarray | None, t: np.ndarray, size_hw) -> np.ndarray | None:
    """uint8 detection mask in working px: 0 on ``exclude`` (photo ``(H, W)`` bool) dilated."""
    if exclude is None or not exclude.any():
        return None
    h, w = size_hw
    small = cv2.warpAffine(exclude.astype(np.uint8) * 255, t[:2], (w, h), flags=cv2.INTER_NEAREST)
    r = max(3, int(0.15 * np.sqrt(np.count_nonzero(small) / np.pi)))
    small = cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return np.where(small > 0, 0, 255).astype(np.uint8)


def register(
    earlier: np.ndarray,
    later: np.ndarray,
    *,
    ecc: bool = True,
    exclude_earlier: np.ndarray | None = None,
    exclude_later: np.ndarray | None = None,
) -> Registration:
    """Register EARLIER onto LATER (both ``(H, W, 3)`` uint8 RGB).

    SIFT keypoints on contrast-equalised gray images (longer side :data:`WORK_SIDE`), Lowe's
    ratio test, then a similarity (``cv2.estimateAffinePartial2D``, RANSAC) and a homography
    (``cv2.findHomography``, USAC MAGSAC++); the homography is kept when it has
    :data:`HOMOGRAPHY_GAIN` times the similarity's inliers. ECC (``cv2.findTransformECC``, which is
    insensitive to brightness and contrast changes) then refines it and is kept when it does not
    move the inlier matches away (RMS error at most 1 working px worse).

    Returns a :class:`Registration`; ``ok`` is False (with ``reason``) when the photos do not
    match: too few inliers, a degenerate transform, or too little overlap.

    ``exclude_earlier`` / ``exclude_later``: ``(H, W)`` bool regions (the lesion, which may have
    changed) where no features are taken; ECC then also ignores the later one.
    """
    import time

    t0 = time.perf_counter()
    ge, te = _to_work(earlier)
    gl, tl = _to_work(later)
    sift = cv2.SIFT_create(nfeatures=5000)
    fe = _feature_mask(exclude_earlier, te, ge.shape[::-1])
    fl = _feature_mask(exclude_later, tl, gl.shape[::-1])
    ke, de = sift.detectAndCompute(ge, fe)
    kl, dl = sift.detectAndCompute(gl, fl)
    t1 = time.perf_counter()
    if de is None or dl is None or len(ke) < 8 or len(kl) < 8:
        return _refuse("sift", "too few features in one of the photos (blurred or blank?)")
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    pairs = matcher.knnMatch(de, dl, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    n = len(good)
    if n < MIN_INLIERS:
        return _refuse(
            "sift",
            f"only {n} feature matches between the photos (need {MIN_INLIERS})",
            matches=n,
        )
    src = np.float64([ke[m.queryIdx].pt for m in good])
    dst = np.float64([kl[m.trainIdx].pt for m in good])

    a, inl_s = cv2.estimateAffinePartial2D(
        src,
        dst,
        method=cv2.RANSAC,
        ransacReprojThreshold=RANSAC_THRESHOLD_PX,
        maxIters=5000,
        confidence=0.999,
    )
    n_s = int(inl_s.sum()) if inl_s is not None else 0
    h_mat, inl_h = cv2.findHomography(
        src, dst, cv2.USAC_MAGSAC, RANSAC_THRESHOLD_PX, maxIters=5000, confidence=0.999
    )
    n_h = int(inl_h.sum()) if inl_h is not None else 0
    cands = []
    if a is not None:
        cands.append(("similarity", np.vstack([a, [0, 0, 1]]), inl_s.ravel().astype(bool), n_s))
    if h_mat is not None:
        cands.append(("homography", h_mat, inl_h.ravel().astype(bool), n_h))
    if not cands:
        return _refuse("sift", "no consistent transform between the photos", matches=n)
    name, work_m, inl, n_in = cands[0]
    if len(cands) == 2 and (a is None or n_h >= HOMOGRAPHY_GAIN * n_s):
        zoom_h, _ = _decompose(h_mat)
        if math.isfinite(zoom_h):
            name, work_m, inl, n_in = cands[1]
    t2 = time.perf_counter()

    method = f"sift+{name}"
    err0 = _rms(work_m, src[inl], dst[inl])
    used_ecc = False
    zoom0, _ = _decompose(work_m)
    plausible = (
        n_in >= MIN_INLIERS
        and n_in >= MIN_INLIER_RATIO * n
        and math.isfinite(zoom0)
        and 1.0 / MAX_ZOOM <= zoom0 <= MAX_ZOOM
    )
    if ecc and plausible:
        refined = _ecc_refine(ge, gl, work_m, homography=name == "homography", mask=fl)
        if refined is not None and _rms(refined, src[inl], dst[inl]) <= err0 + 1.0:
            work_m, used_ecc = refined, True
            method += "+ecc"
    t3 = time.perf_counter()

    full = np.linalg.inv(tl) @ work_m @ te
    if abs(full[2, 2]) < 1e-12:
        return _refuse(method, "no consistent transform between the photos", matches=n)
    full /= full[2, 2]
    src_full = apply_homography(np.linalg.inv(te), src[inl])
    dst_full = apply_homography(np.linalg.inv(tl), dst[inl])
    err = _rms(full, src_full, dst_full)
    zoom, rot = _decompose(full)
    ov = _overlap(full, earlier.shape[:2], later.shape[:2])
    timings = {
        "features": (t1 - t0) * 1e3,
        "robust_fit": (t2 - t1) * 1e3,
        "ecc": (t3 - t2) * 1e3,
    }
    common = dict(
        matrix=full,
        inliers=n_in,
        matches=n,
        reprojection_error_px=err,
        scale=zoom,
        rotation_deg=rot,
        overlap=ov,
        ecc=used_ecc,
        timings_ms=timings,
    )
    reason = None
    if n_in < MIN_INLIERS:
        reason = f"only {n_in} consistent feature matches (need {MIN_INLIERS})"
    elif n_in < MIN_INLIER_RATIO * n:
        reason = f"only {n_in} of {n} feature matches agree on one transform"
    elif not (math.isfinite(zoom) and 1.0 / MAX_ZOOM <= zoom <= MAX_ZOOM):
        reason = "the transform between the photos is degenerate (mirrored or extreme zoom)"
    elif _spread(dst_full, later.shape[:2]) < MIN_SPREAD:
        reason = (
            "the matching features cluster in a small patch (a ruler, sticker or the lens rim?)"
        )
    elif ov < 0.15:
        reason = f"the photos overlap by only {ov:.0%}"
    if reason is not None:
        return Registration(ok=False, method=method, reason=reason, **common)
    return Registration(ok=True, method=method, **common)


def _ecc_refine(
    ge: np.ndarray,
    gl: np.ndarray,
    work_m: np.ndarray,
    *,
    homography: bool,
    mask: np.ndarray | None = None,
) -> np.ndarray | None:
    """ECC refinement of ``work_m`` (EARLIER -> LATER working px), at half the working size.

    ``findTransformECC`` warps its input (EARLIER) onto its template (LATER) with a matrix that
    maps template coordinates to input coordinates, i.e. the inverse of ``work_m``.
    """
    f = 0.5
    small_e = cv2.resize(ge, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    small_l = cv2.resize(gl, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    sx_e, sy_e = small_e.shape[1] / ge.shape[1], small_e.shape[0] / ge.shape[0]
    sx_l, sy_l = small_l.shape[1] / gl.shape[1], small_l.shape[0] / gl.shape[0]
    se = np.array([[sx_e, 0, 0.5 * sx_e - 0.5], [0, sy_e, 0.5 * sy_e - 0.5], [0, 0, 1]])
    sl = np.array([[sx_l, 0, 0.5 * sx_l - 0.5], [0, sy_l, 0.5 * sy_l - 0.5], [0, 0, 1]])
    small_mask = None
    if mask is not None:
        small_mask = cv2.resize(mask, small_l.shape[::-1], interpolation=cv2.INTER_NEAREST)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
    try:
        inv_small = np.linalg.inv(sl @ work_m @ np.linalg.inv(se))  # LATER -> EARLIER, small
        inv_small /= inv_small[2, 2]
        if homography:
            warp = inv_small.astype(np.float32)
            _, warp = cv2.findTransformECC(
                small_l, small_e, warp, cv2.MOTION_HOMOGRAPHY, criteria, small_mask, 5
            )
            m = warp.astype(np.float64)
        else:
            warp = inv_small[:2].astype(np.float32)
            _, warp = cv2.findTransformECC(
                small_l, small_e, warp, cv2.MOTION_AFFINE, criteria, small_mask, 5
            )
            m = np.vstack([warp.astype(np.float64), [0, 0, 1]])
    except (cv2.error, np.linalg.LinAlgError):
        return None
    out = np.linalg.inv(sl) @ np.linalg.inv(m) @ se
    if not np.all(np.isfinite(out)):
        return None
    return out / out[2, 2]
