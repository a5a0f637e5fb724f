"""How well the outline-quality estimate tells failures apart (lab: evaluate and train).

Failure: Jaccard with the expert below 0.65 (ISIC). ``p``: the estimate's failure probability.

- :func:`failure_auroc`: area under the ROC curve of ``p`` against failure (rank statistic).
- :func:`expected_calibration_error`: ECE over equal-width bins of ``p``.
- :func:`risk_coverage`: answer the outlines with the lowest ``p`` first; threshold-Jaccard over
  the answered ones at every coverage.
- :func:`line_chart_png` / :func:`reliability_png` / :func:`risk_coverage_png`: plots (OpenCV,
  no matplotlib in the runtime's dependencies).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.stats import rankdata

from skinscreen.evaluate.metrics import ISIC_JACCARD_THRESHOLD


def failure_auroc(p: np.ndarray, failed: np.ndarray) -> float | None:
    """AUROC of scores ``p`` ``(N,)`` for the labels ``failed`` ``(N,)`` bool (ties count half);
    None when one class is empty."""
    p, y = np.asarray(p, float), np.asarray(failed, bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return None
    r = rankdata(p)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def expected_calibration_error(p: np.ndarray, failed: np.ndarray, bins: int = 10) -> float:
    """ECE: sum over equal-width bins of ``p`` of (share of outlines) x |mean p - failure rate|."""
    p, y = np.asarray(p, float), np.asarray(failed, float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    e = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            e += sel.mean() * abs(p[sel].mean() - y[sel].mean())
    return float(e)


def reliability_table(p: np.ndarray, failed: np.ndarray, bins: int = 10) -> list[dict]:
    p, y = np.asarray(p, float), np.asarray(failed, float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    return [
        {
            "bin": [b / bins, (b + 1) / bins],
            "n": int((idx == b).sum()),
            "mean_p": float(p[idx == b].mean()),
            "failure_rate": float(y[idx == b].mean()),
        }
        for b in range(bins)
        if (idx == b).any()
    ]


def risk_coverage(p: np.ndarray, jaccards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(coverage (N,), threshold-Jaccard over the answered (N,))``: outlines answered in
    order of increasing ``p``."""
    order = np.argsort(np.asarray(p, float), kind="stable")
    j = np.asarray(jaccards, float)[order]
    tj = np.where(j >= ISIC_JACCARD_THRESHOLD, j, 0.0)
    k = np.arange(1, len(j) + 1)
    return k / len(j), np.cumsum(tj) / k


_W, _H, _M = 560, 420, 60


def line_chart_png(
    series: list[tuple[str, np.ndarray, np.ndarray]],
    title: str,
    xlabel: str,
    ylabel: str,
    *,
    y_range: tuple[float, float] = (0.0, 1.0),
    diagonal: bool = False,
    points: bool = False,
) -> bytes:
    """PNG bytes of one or more ``(label, x in [0, 1], y)`` lines on a white canvas."""
    img = np.full((_H, _W, 3), 255, np.uint8)
    lo, hi = y_range
    x0, y0, x1, y1 = _M, _H - _M, _W - 20, 40

    def px(x, y):
        return int(x0 + (x1 - x0) * x), int(y0 - (y0 - y1) * (y - lo) / (hi - lo))

    cv2.rectangle(img, (x0, y1), (x1, y0), (0, 0, 0), 1)
    for t in np.linspace(0, 1, 6):
        cv2.putText(img, f"{t:.1f}", (px(t, lo)[0] - 10, y0 + 18), 0, 0.4, (0, 0, 0), 1)
        v = lo + t * (hi - lo)
        cv2.putText(img, f"{v:.2f}", (8, px(0, v)[1] + 4), 0, 0.4, (0, 0, 0), 1)
        cv2.line(img, (x0, px(0, v)[1]), (x1, px(0, v)[1]), (225, 225, 225), 1)
    if diagonal:
        cv2.line(img, px(0, lo), px(1, hi), (160, 160, 160), 1)
    colours = [(200, 80, 30), (30, 120, 220), (40, 160, 40), (150, 40, 150)]
    for i, (label, xs, ys) in enumerate(series):
        c = colours[i % len(colours)]
        pts = np.array(
            [px(float(a), float(np.clip(b, lo, hi))) for a, b in zip(xs, ys, strict=True)]
        )
        if len(pts) > 1:
            cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, c, 2, cv2.LINE_AA)
        if points:
            for q in pts:
                cv2.circle(img, tuple(int(v) for v in q), 4, c, -1)
        cv2.putText(img, label, (x0 + 10, y1 + 18 + 18 * i), 0, 0.45, c, 1, cv2.LINE_AA)
    cv2.putText(img, title, (x0, 25), 0, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, ((x0 + x1) // 2 - 60, _H - 20), 0, 0.45, (0, 0, 0), 1)
    cv2.putText(img, ylabel, (x0 + 5, y0 - 8), 0, 0.4, (90, 90, 90), 1)
    ok, buf = cv2.imencode(".png", img[..., ::-1])
    if not ok:
        raise RuntimeError("could not encode the plot as PNG")
    return buf.tobytes()


def risk_coverage_png(curves: list[tuple[str, np.ndarray, np.ndarray]], title: str) -> bytes:
    """Risk-coverage plot: ``(label, p_failure, jaccard)`` per curve."""
    series = []
    for label, p, j in curves:
        cov, tj = risk_coverage(p, j)
        series.append((label, cov, tj))
    return line_chart_png(
        series, title, "coverage (share answered)", "threshold-Jaccard answered", y_range=(0.4, 1)
    )


def reliability_png(curves: list[tuple[str, np.ndarray, np.ndarray]], title: str) -> bytes:
    """Reliability diagram: ``(label, p_failure, failed)`` per curve (10 bins)."""
    series = []
    for label, p, y in curves:
        t = reliability_table(p, y)
        series.append(
            (label, np.array([r["mean_p"] for r in t]), np.array([r["failure_rate"] for r in t]))
        )
    return line_chart_png(
        series,
        title,
        "predicted failure probability",
        "observed failure rate",
        diagonal=True,
        points=True,
    )
