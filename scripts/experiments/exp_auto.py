"""Auto-mode box rules on the localiser map (fourth session, docs/auto.md).

Usage (from the repository root): python scripts/experiments/exp_auto.py lesions-dev|lesions-skin-tones|train OUT.json [STEP]
(train: out-of-fold maps of the fold heads in $HEADS, a heads-<config>.pt from
skinscreen.train.localiser_views, on the embedding cache of `skinscreen train-localiser`).
"""
import sys
from pathlib import Path
from photos import main
import cv2, numpy as np
from skinscreen.predictor import LesionPredictor
from skinscreen.preprocess.transforms import box_from_mask, expand_box

which, out = sys.argv[1], Path(sys.argv[2])
pred = LesionPredictor("litemedsam", variant="onnx-fp32", threads=1, box_check=False)
MARGIN = 0.05


def comps(prob, t, thr):
    s = t.input_size; h, w = t.resized_size
    up = cv2.resize(prob, (s, s), interpolation=cv2.INTER_LINEAR)[:h, :w]
    n, lab, st, _ = cv2.connectedComponentsWithStats((up >= thr).astype(np.uint8), connectivity=8)
    return up, n, lab, st


def to_photo(t, box_frame):
    H, W = t.original_size
    b = t.invert_boxes(np.asarray(box_frame, np.float64)[None])[0]
    return np.clip(b, 0, [W, H, W, H])


def strategies(prob, t):
    """name -> photo box (or None)."""
    res = {}
    up, n, lab, st = comps(prob, t, 0.5)
    best = None
    if n > 1:
        mass = [up[lab == i].sum() for i in range(1, n)]
        best = 1 + int(np.argmax(mass))
        if mass[best - 1] < 4:
            best = None
    for thr in (0.5, 0.4, 0.3, 0.2):
        u, n2, lab2, st2 = comps(prob, t, thr)
        if n2 <= 1:
            res[f"t{thr}"] = None; res[f"h{thr}"] = None; continue
        mass = [u[lab2 == i].sum() for i in range(1, n2)]
        i = 1 + int(np.argmax(mass))
        x, y, bw, bh, _ = st2[i]
        res[f"t{thr}"] = to_photo(t, [x, y, x + bw, y + bh])
        # hysteresis: the low-threshold component that contains the 0.5 seed
        if best is not None:
            ids = np.unique(lab2[lab == best]); ids = ids[ids > 0]
            sel = np.isin(lab2, ids)
            ys, xs = np.nonzero(sel)
            res[f"h{thr}"] = to_photo(t, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        else:
            res[f"h{thr}"] = None
    return res


def decode(box, shape):
    logits, iou = pred.decode_logits(pred.encoding.transform.apply_boxes(box))
    return pred.postprocess(logits)[0], float(np.ravel(iou)[0])


def jac(m, g):
    return float((m & g).sum()) / max(float((m | g).sum()), 1.0)


def run_photo(pid, prob, gt):
    t = pred.encoding.transform
    rec = {"id": pid}
    for name, box in strategies(prob, t).items():
        if box is None:
            rec[name] = 0.0; rec[name + "_iou"] = 0.0; continue
        b = expand_box(box, MARGIN, gt.shape)
        m, iou = decode(b, gt.shape)
        rec[name] = jac(m, gt); rec[name + "_iou"] = iou
        if name == "t0.5" and m.any():
            # refinement: box of the mask, grown, decoded again (1 and 2 rounds)
            m2, iou2 = decode(expand_box(box_from_mask(m), MARGIN, gt.shape), gt.shape)
            rec["r1"] = jac(m2, gt); rec["r1_iou"] = iou2
            if m2.any():
                m3, iou3 = decode(expand_box(box_from_mask(m2), MARGIN, gt.shape), gt.shape)
                rec["r2"] = jac(m3, gt); rec["r2_iou"] = iou3
            else:
                rec["r2"] = 0.0
        elif name == "t0.5":
            rec["r1"] = rec["r2"] = 0.0
    gb = box_from_mask(gt)
    m, iou = decode(expand_box(gb, MARGIN, gt.shape), gt.shape)
    rec["gt"] = jac(m, gt)
    return rec


main(run_photo, pred)
