"""Colour-cast check vs the suite's colour casts (sixth session, docs/robustness.md): the
Shades-of-Gray illuminant angle (``skinscreen.assess.color``, what the quality check compares
with ``COLOR_CAST_MAX_DEG``) of each photo as taken and under the suite's ``cast-warm`` /
``cast-cool`` conditions, photos resized to 800 px. Prints percentiles and the share above
10/15/20 degrees per set; writes the angles to OUT.csv.

Usage: python scripts/experiments/cast_angles.py OUT.csv
"""

import csv
import sys
from pathlib import Path

import cv2
import numpy as np

from skinscreen.assess import color as col
from skinscreen.evaluate.perturbations import BY_NAME
from skinscreen.io.image import load_image

SETS = {"lesions-dev": 1, "lesions-skin-tones": 1, "lesions-train": 6}  # name -> every n-th photo
CONDITIONS = ("original", "cast-warm", "cast-cool")


def angles(path: Path) -> list[float]:
    im = load_image(path)
    s = max(im.shape[:2]) / 800
    if s > 1:
        size = (int(im.shape[1] / s), int(im.shape[0] / s))
        im = cv2.resize(im, size, interpolation=cv2.INTER_AREA)
    blank = np.zeros(im.shape[:2], bool)
    out = []
    for c in CONDITIONS:
        x, _ = BY_NAME[c].apply(im, blank)
        out.append(round(col.color_cast_deg(col.illuminant_shades_of_gray(x)), 1))
    return out


def main() -> None:
    rows = []
    for name, step in SETS.items():
        photos = sorted(Path(f"../shared/data/{name}/images").iterdir())[::step]
        vals = [angles(p) for p in photos]
        rows += [[name, p.stem, *v] for p, v in zip(photos, vals, strict=True)]
        for i, c in enumerate(CONDITIONS):
            v = np.array([x[i] for x in vals])
            print(
                f"{name} {c}: n={len(v)} median {np.median(v):.1f} p90 {np.percentile(v, 90):.1f}"
                + "".join(f" >{t}: {np.mean(v > t):.2f}" for t in (10, 15, 20))
            )
    with open(sys.argv[1], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["set", "id", *CONDITIONS])
        w.writerows(rows)


if __name__ == "__main__":
    main()
