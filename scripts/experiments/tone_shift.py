"""Synthetic darker skin (sixth session, docs/robustness.md): is automatic mode tone-sensitive?

Each photo is darkened in CIELAB (L* x 0.55, b* x 1.3 + 4: a very light skin ring of ITA ~50
degrees moves to roughly -30, "brown"/"dark"; the lesion darkens too, so the contrast between them
shrinks as on darker skin) and segmented with the automatic box and with the expert's tight box
(+ the runtime's margin), as taken and darkened. A crude stand-in for darker skin, used only to
ask whether the localiser needs tone augmentation; never a fairness figure.

Usage: python scripts/experiments/tone_shift.py IMAGES MASKS OUT.json [STEP]
"""

import json
import sys

import cv2
import numpy as np
from photos import argv_photos

from skinscreen.errors import NoLesionFoundError
from skinscreen.evaluate.metrics import dice, jaccard, threshold_jaccard
from skinscreen.evaluate.robustness import skin_tone
from skinscreen.predictor import LesionPredictor
from skinscreen.preprocess.transforms import box_from_mask


def darker(image: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    lab[..., 0] *= 0.55
    lab[..., 2] = lab[..., 2] * 1.3 + 4.0
    rgb = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def main() -> None:
    out, photos = argv_photos(sys.argv)
    pred = LesionPredictor("litemedsam", engine="onnxruntime")
    rows = []
    for pair, photo, truth in photos:
        row = {"id": pair.id}
        for name, img in (("taken", photo), ("darker", darker(photo))):
            row[f"{name}_tone"] = skin_tone(img, truth)[1]
            pred.set_image(img)
            seg = pred.predict(box=box_from_mask(truth))
            row[f"{name}_box_dice"] = dice(seg.mask, truth)
            try:
                m = pred.predict().mask
            except NoLesionFoundError:
                m = np.zeros_like(truth)
            row[f"{name}_auto_dice"] = dice(m, truth)
            row[f"{name}_auto_thrj"] = threshold_jaccard(jaccard(m, truth))
        rows.append(row)
        print(row, flush=True)
    out.write_text(json.dumps(rows, indent=1))
    for k in rows[0]:
        if k != "id" and not k.endswith("_tone"):
            print(k, round(float(np.mean([r[k] for r in rows])), 4))


if __name__ == "__main__":
    main()
