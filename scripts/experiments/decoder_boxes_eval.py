"""Held-out check of a decoder from decoder_boxes.py at photo resolution, with the runtime's
embeddings (ONNX Runtime fp32) and post-processing, base vs tuned, under the robustness suite's
prompt conditions (+ the 5% margin).

Usage (from the repository root): python scripts/experiments/decoder_boxes_eval.py
    lesions-dev|lesions-skin-tones OUT.json DECODER.pt
"""

import sys

import numpy as np
import torch
from photos import main, prompt_boxes

from skinscreen.export.reference import load_model
from skinscreen.predictor import LesionPredictor
from skinscreen.preprocess.transforms import expand_box
from skinscreen.spec import get_spec

pred = LesionPredictor("litemedsam", variant="onnx-fp32", threads=1, box_check=False)
base = load_model(get_spec("litemedsam")).eval()
tuned = load_model(get_spec("litemedsam")).eval()
state = torch.load(sys.argv.pop(3), map_location="cpu", weights_only=True)
tuned.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)


def dice(m, g):
    return 2 * float((m & g).sum()) / max(float(m.sum() + g.sum()), 1.0)


@torch.no_grad()
def run_photo(pid, prob, gt):
    hw = gt.shape
    every = prompt_boxes(pid, gt)
    conds = {k: every[k] for k in ("tight", "jitter-10", "jitter-20", "loose-25")}
    emb = torch.from_numpy(pred.encoding.embedding)
    t = pred.encoding.transform
    rec = {"id": pid}
    for c, b in conds.items():
        box = torch.from_numpy(t.apply_boxes(expand_box(b, 0.05, hw)).astype(np.float32)).reshape(1, 4)
        for name, model in (("base", base), ("tuned", tuned)):
            logits, _ = model.decode(emb, box)
            mask = pred.postprocess(logits[0, 0].numpy())[0]
            rec[f"{c}:{name}"] = dice(mask, gt)
    return rec


main(run_photo, pred)
