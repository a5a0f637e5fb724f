"""Scale from a ruler in the photo: find a millimetre ruler's baseline and its longest ticks,
and derive mm per pixel with an uncertainty. Never guesses: no readable ruler, no scale.

Method: dark thin structures (morphological black-hat) -> the ruler's straight baseline
(probabilistic Hough transform, ``cv2.HoughLinesP``) -> a strip resampled along it
(``cv2.remap``) -> per position along the line, how far the tick reaches from the baseline ->
the longest ticks' positions (``scipy.signal.find_peaks``, sub-pixel centroids) -> a straight-line
fit ``position = a + pitch * k`` over their integer indices; ``pitch`` px = ``tick_mm`` mm.
The fit's standard error gives the uncertainty.

Assumption (stated in every report): the ruler's longest regularly spaced ticks are ``tick_mm``
apart (1 mm on the dermoscopy rulers of the ISIC archive, which carry 0.1 mm sub-ticks and a
0.5 mm half tick). Photos ``(H, W, 3)`` uint8 RGB; points ``[x, y]`` photo pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.signal import find_peaks

#: Longer side (px) the photo is resampled to for the search.
WORK_SIDE = 1024
#: A ruler needs at least this many long ticks in a row.
MIN_TICKS = 5
#: Tick positions may deviate from the fitted even spacing by at most this fraction of it (RMS).
MAX_RESIDUAL = 0.03
#: Plausible pitch of the long ticks, working px.
PITCH_RANGE = (6.0, 250.0)


@dataclass(frozen=True)
class RulerScale:
    """A scale read from a ruler: ``mm_per_pixel`` +- ``uncertainty_mm_per_pixel`` (one
    standard error), from ``ticks`` long ticks ``pitch_px`` photo px apart along the baseline
    ``line`` ``[[x0, y0], [x1, y1]]``."""

    mm_per_pixel: float
    uncertainty_mm_per_pixel: float
    pitch_px: float
    ticks: int
    tick_mm: float
    line: list[list[float]]
    residual_rel: float

    def to_dict(self) -> dict:
        return {
            "mm_per_pixel": round(self.mm_per_pixel, 6),
            "uncertainty_mm_per_pixel": round(self.uncertainty_mm_per_pixel, 6),
            "detail": {
                "method": "ruler ticks (Hough baseline, tick peaks, linear fit)",
                "tick_mm": self.tick_mm,
                "pitch_px": round(self.pitch_px, 3),
                "ticks": self.ticks,
                "residual_rel": round(self.residual_rel, 4),
                "line": [[round(v, 1) for v in p] for p in self.line],
            },
        }


def _dark_lines(gray: np.ndarray) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    return cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, k).astype(np.float32)


def _strip(bh: np.ndarray, p0, p1, half: int, extend: float):
    """Black-hat sampled on a grid along p0 -> p1: ``(2 half + 1, T)``, rows = offsets
    ``-half..half`` along the normal, columns = 1 px steps along the line (extended)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    length = float(np.linalg.norm(p1 - p0))
    u = (p1 - p0) / length
    n = np.array([-u[1], u[0]])
    t = np.arange(-extend * length, (1 + extend) * length)
    s = np.arange(-half, half + 1)
    xy = p0[None, None, :] + t[None, :, None] * u + s[:, None, None] * n
    strip = cv2.remap(
        bh,
        xy[..., 0].astype(np.float32),
        xy[..., 1].astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return strip, t, u, n, p0


def _fit(pos: np.ndarray) -> tuple[float, float, float, np.ndarray] | None:
    """Even-spacing fit of sorted positions: (pitch, its standard error, rms residual / pitch,
    integer index of each position)."""
    if len(pos) < MIN_TICKS:
        return None
    d = np.diff(pos)
    pitch = float(np.median(d))
    if not PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1]:
        return None
    k = np.round((pos - pos[0]) / pitch)
    if len(np.unique(k)) != len(k):
        return None
    for _ in range(2):
        a = np.polyfit(k, pos, 1)
        pitch = float(a[0])
        k = np.round((pos - a[1]) / pitch)
    a, cov = np.polyfit(k, pos, 1, cov=True) if len(k) > 3 else (np.polyfit(k, pos, 1), None)
    res = pos - np.polyval(a, k)
    rms = float(np.sqrt(np.mean(res**2)))
    se = float(math.sqrt(cov[0, 0])) if cov is not None else float("nan")
    return float(a[0]), se, rms / float(a[0]), k


def _ticks_along(strip: np.ndarray, side: int, half: int):
    """Long-tick positions (strip columns, sub-pixel) on one side of the baseline, or None."""
    rows = strip[half + 2 :] if side > 0 else strip[: half - 1][::-1]
    if rows.size == 0:
        return None
    on = rows > max(12.0, float(np.percentile(strip, 90)))
    # how far a dark run reaches out from the baseline, per column
    reach = np.argmin(np.vstack([on, np.zeros((1, on.shape[1]), bool)]), axis=0).astype(float)
    if reach.max() < 4:
        return None
    peaks, props = find_peaks(reach, height=0.8 * np.percentile(reach[reach > 0], 98), distance=3)
    if len(peaks) < MIN_TICKS:
        return None
    tall = float(np.median(props["peak_heights"]))
    lo, hi = max(1, int(0.45 * tall)), max(2, int(0.85 * tall))
    prof = rows[lo:hi].mean(axis=0)
    pos = []
    for p in peaks:
        a, b = max(0, p - 2), min(len(prof), p + 3)
        w = prof[a:b]
        pos.append(float((w * np.arange(a, b)).sum() / w.sum()) if w.sum() > 0 else float(p))
    return np.asarray(pos), reach, peaks


def find_ruler_scale(image: np.ndarray, tick_mm: float = 1.0) -> RulerScale | None:
    """mm per pixel from a ruler in ``image`` ``(H, W, 3)`` uint8 RGB, or None when no ruler with
    at least :data:`MIN_TICKS` evenly spaced long ticks is found."""
    h, w = image.shape[:2]
    f = min(1.0, WORK_SIDE / max(h, w))
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if f < 1.0:
        gray = cv2.resize(gray, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        f = gray.shape[1] / w
    bh = _dark_lines(gray)
    binary = (bh > max(15.0, float(np.percentile(bh, 97)))).astype(np.uint8) * 255
    side = max(gray.shape)
    lines = cv2.HoughLinesP(
        binary, 1, np.pi / 720, threshold=60, minLineLength=0.1 * side, maxLineGap=3
    )
    if lines is None:
        return None
    segs = sorted(
        lines.reshape(-1, 4).astype(float), key=lambda s: -math.hypot(s[2] - s[0], s[3] - s[1])
    )
    best = None
    half = int(0.12 * side)
    for seg in segs[:12]:
        p0, p1 = seg[:2], seg[2:]
        strip, t, u, n, origin = _strip(bh, p0, p1, half, 0.15)
        for sgn in (1, -1):
            found = _ticks_along(strip, sgn, half)
            if found is None:
                continue
            pos, reach, peaks = found
            fit = _fit(pos)
            if fit is None:
                continue
            pitch, se, resid, k = fit
            heights = reach[peaks]
            # every other tick shorter: the half ticks were taken for long ones
            ev, od = heights[k % 2 == 0], heights[k % 2 == 1]
            if len(ev) >= MIN_TICKS - 1 and len(od) >= MIN_TICKS - 1:
                e_h, o_h = float(np.median(ev)), float(np.median(od))
                if min(e_h, o_h) < 0.85 * max(e_h, o_h):
                    fit2 = _fit(pos[(k % 2 == 0) if e_h > o_h else (k % 2 == 1)])
                    if fit2 is None:
                        continue
                    pitch, se, resid, k = fit2
            if resid > MAX_RESIDUAL or len(k) < MIN_TICKS:
                continue
            score = len(k) * (1 - resid / MAX_RESIDUAL)
            if best is None or score > best[0]:
                line = [(origin + t[0] * u) / f, (origin + t[-1] * u) / f]
                best = (score, pitch / f, se / f, len(k), resid, line)
    if best is None:
        return None
    _, pitch_px, se_px, n_ticks, resid, line = best
    mmpp = tick_mm / pitch_px
    se_px = se_px if math.isfinite(se_px) else resid * pitch_px
    return RulerScale(
        mm_per_pixel=mmpp,
        uncertainty_mm_per_pixel=mmpp * se_px / pitch_px,
        pitch_px=pitch_px,
        ticks=n_ticks,
        tick_mm=tick_mm,
        line=[[float(v) for v in p] for p in line],
        residual_rel=resid,
    )


def draw_ruler(
    image: np.ndarray,
    origin_xy,
    angle_deg: float,
    px_per_mm: float,
    length_mm: int = 10,
    sub_ticks: int = 10,
) -> np.ndarray:
    """A copy of ``image`` with a dermoscopy-style ruler drawn on it (for tests): a baseline from
    ``origin_xy`` at ``angle_deg`` (counter-clockwise), long ticks every mm, a half tick at 0.5 mm
    and ``sub_ticks`` sub-divisions per mm, ``px_per_mm`` photo px per mm."""
    out = image.copy()
    a = math.radians(angle_deg)
    u = np.array([math.cos(a), -math.sin(a)])
    n = np.array([-u[1], u[0]])
    o = np.asarray(origin_xy, float)
    color = (30, 25, 25)
    th = max(1, round(px_per_mm / 25))
    end = o + u * px_per_mm * length_mm
    cv2.line(
        out,
        tuple(np.round(o).astype(int)),
        tuple(np.round(end).astype(int)),
        color,
        th,
        cv2.LINE_AA,
    )
    for i in range(length_mm * sub_ticks + 1):
        p = o + u * px_per_mm * i / sub_ticks
        if i % sub_ticks == 0:
            ln = 0.9 * px_per_mm
        elif sub_ticks % 2 == 0 and i % (sub_ticks // 2) == 0:
            ln = 0.6 * px_per_mm
        else:
            ln = 0.35 * px_per_mm
        q = p - n * ln
        cv2.line(
            out,
            tuple(np.round(p).astype(int)),
            tuple(np.round(q).astype(int)),
            color,
            th,
            cv2.LINE_AA,
        )
    return out
