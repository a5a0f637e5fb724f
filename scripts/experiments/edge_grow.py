"""Growing the sides of a drawn box that cut the lesion (seventh session, docs/robustness.md).

The shifted boxes of ``jitter-20`` cut into the lesion and neither decoder recovers. With the 5%
margin users get, a well-drawn box leaves room round the lesion, so an outline that runs along a
side of the prompted box says that side probably cuts it. Rule: for each side of the box used,
``contact`` = share of that side's length where the mask reaches a strip 2% of the box size deep
inside it; every side with ``contact >= c`` that is not at the photo's edge moves out by ``g`` of
the box size; the photo is prompted again (decoder + box check only, no encoder run); at most
``rounds`` times.

For every photo, every prompt condition of the suite (same seeded boxes, ``--margin 0.05``) and
every (c, g) of a small grid, rows record Dice with and without the rule. ``--rounds`` fixed at 2.
The grid is chosen in 5-fold cross-validation over photos (grouped by photo: each photo's
conditions stay together) by mean Dice over all prompt conditions.

Usage: python scripts/experiments/edge_grow.py IMAGES MASKS OUT.json [STEP]
"""

import json
import sys

import numpy as np
from photos import argv_photos

from skinscreen.evaluate.metrics import dice
from skinscreen.evaluate.perturbations import BY_NAME
from skinscreen.evaluate.robustness import _prompt_box
from skinscreen.predictor import LesionPredictor

CONDITIONS = ("original", "jitter-5", "jitter-10", "jitter-20", "loose-10", "loose-25")
CONTACTS = (0.1, 0.2, 0.3, 0.5)
GROWTHS = (0.1, 0.2, 0.3)
ROUNDS = 2
STRIP = 0.02


def side_contacts(mask: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Share of each side (left, top, right, bottom) of an XYXY box along which ``mask`` reaches
    a strip ``STRIP`` of the box size deep inside that side."""
    H, W = mask.shape
    x0, y0, x1, y1 = np.round(box).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return np.zeros(4)
    sx = max(2, int(round(STRIP * (x1 - x0))))
    sy = max(2, int(round(STRIP * (y1 - y0))))
    inner = mask[y0:y1, x0:x1]
    return np.array(
        [
            inner[:, :sx].any(axis=1).mean(),
            inner[:sy, :].any(axis=0).mean(),
            inner[:, -sx:].any(axis=1).mean(),
            inner[-sy:, :].any(axis=0).mean(),
        ]
    )


def grown(box: np.ndarray, sides: np.ndarray, g: float, shape: tuple[int, int]) -> np.ndarray:
    H, W = shape
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    d = g * np.array([w, h, w, h]) * sides * np.array([-1, -1, 1, 1])
    return np.clip(box + d, 0, [W, H, W, H])


def at_edge(box: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    H, W = shape
    return np.array([box[0] <= 0.5, box[1] <= 0.5, box[2] >= W - 0.5, box[3] >= H - 0.5])


def main() -> None:
    out, photos = argv_photos(sys.argv)
    pred = LesionPredictor("litemedsam", engine="onnxruntime")
    rows = []
    for pair, photo, truth in photos:
        pred.set_image(photo)
        cache: dict[tuple, np.ndarray] = {}

        def mask_for(box: np.ndarray, cache: dict = cache) -> np.ndarray:
            key = tuple(np.round(box, 1))
            if key not in cache:
                cache[key] = pred.predict(box=box, box_margin=0.0).mask
            return cache[key]

        for name in CONDITIONS:
            box0 = _prompt_box(BY_NAME[name], truth, pair.id, 0, 0.05)
            m0 = mask_for(box0)
            row = {"id": pair.id, "condition": name, "dice": dice(m0, truth)}
            row["contacts"] = [round(float(c), 3) for c in side_contacts(m0, box0)]
            for c in CONTACTS:
                for g in GROWTHS:
                    box, m, runs = box0, m0, 0
                    for _ in range(ROUNDS):
                        sides = (side_contacts(m, box) >= c) & ~at_edge(box, truth.shape)
                        if not sides.any():
                            break
                        box = grown(box, sides.astype(float), g, truth.shape)
                        m = mask_for(box)
                        runs += 1
                    row[f"dice_c{c}_g{g}"] = dice(m, truth)
                    row[f"runs_c{c}_g{g}"] = runs
            rows.append(row)
        print(pair.id, {r["condition"]: round(r["dice"], 3) for r in rows[-6:]}, flush=True)
    out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
