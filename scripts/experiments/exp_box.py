"""Box-prompt rules under jitter / loose boxes, with and without the localiser (fourth session,
docs/auto.md). Usage as exp_auto.py.
"""
import sys, zlib
from pathlib import Path
from photos import main
import cv2, numpy as np
from skinscreen.predictor import LesionPredictor
from skinscreen.preprocess.transforms import box_from_mask, expand_box
from skinscreen.evaluate.dataset import jitter_box

which, out = sys.argv[1], Path(sys.argv[2])
pred = LesionPredictor("litemedsam", variant="onnx-fp32", threads=1, box_check=False)
M = 0.05


def comp_boxes(prob, t, thr=0.3):
    s = t.input_size; h, w = t.resized_size
    up = cv2.resize(prob, (s, s), interpolation=cv2.INTER_LINEAR)[:h, :w]
    n, lab, st, _ = cv2.connectedComponentsWithStats((up >= thr).astype(np.uint8), connectivity=8)
    H, W = t.original_size
    res = []
    for i in range(1, n):
        x, y, bw, bh, a = st[i]
        mass = float(up[lab == i].sum())
        if mass < 4:
            continue
        b = t.invert_boxes(np.array([[x, y, x + bw, y + bh]], np.float64))[0]
        res.append((np.clip(b, 0, [W, H, W, H]), mass))
    return res


def inter(a, b):
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def area(a):
    return (a[2] - a[0]) * (a[3] - a[1])


def decode(box):
    logits, iou = pred.decode_logits(pred.encoding.transform.apply_boxes(box))
    return pred.postprocess(logits)[0], float(np.ravel(iou)[0])


def dice(m, g):
    return 2 * float((m & g).sum()) / max(float(m.sum() + g.sum()), 1.0)


def run_photo(pid, prob, gt):
    t = pred.encoding.transform
    H, W = gt.shape
    gb = box_from_mask(gt).astype(np.float64)
    rng = np.random.default_rng(zlib.crc32(pid.encode()))
    conds = {"tight": gb, "j10": jitter_box(gb, (H, W), rng, 0.10), "j20": jitter_box(gb, (H, W), rng, 0.20),
             "loose25": expand_box(gb, 0.25, (H, W))}
    comps = {thr: comp_boxes(prob, t, thr) for thr in (0.5, 0.3)}
    rec = {"id": pid}
    for c, ub in conds.items():
        u = expand_box(ub, M, (H, W))
        m, iou = decode(u)
        rec[f"{c}:U"] = dice(m, gt); rec[f"{c}:U_iou"] = iou
        rec[f"{c}:ubox"] = [float(v) for v in ub]
        rec[f"{c}:mbox"] = [float(v) for v in box_from_mask(m)] if m.any() else None
        for thr, cb in comps.items():
            # localiser components overlapping the user box (by >= 30% of the component's box)
            ov = [b for b, _ in cb if inter(b, ub) >= 0.3 * area(b)]
            if not ov:
                for s in ("L", "AVG", "UNI", "INT"):
                    rec[f"{c}:{s}{thr}"] = rec[f"{c}:U"]
                continue
            L = np.array([min(b[0] for b in ov), min(b[1] for b in ov), max(b[2] for b in ov), max(b[3] for b in ov)])
            rec[f"{c}:Lbox{thr}"] = [float(v) for v in L]
            cand = {"L": L, "AVG": (L + ub) / 2,
                    "UNI": np.array([min(L[0], ub[0]), min(L[1], ub[1]), max(L[2], ub[2]), max(L[3], ub[3])]),
                    "INT": np.array([max(L[0], ub[0]), max(L[1], ub[1]), min(L[2], ub[2]), min(L[3], ub[3])])}
            for s, b in cand.items():
                if b[2] - b[0] < 2 or b[3] - b[1] < 2:
                    rec[f"{c}:{s}{thr}"] = rec[f"{c}:U"]; continue
                m2, iou2 = decode(expand_box(b, M, (H, W)))
                rec[f"{c}:{s}{thr}"] = dice(m2, gt); rec[f"{c}:{s}{thr}_iou"] = iou2
        # refinement from the mask: one round
        if m.any():
            m3, _ = decode(expand_box(box_from_mask(m), M, (H, W)))
            rec[f"{c}:R1"] = dice(m3, gt)
        else:
            rec[f"{c}:R1"] = 0.0
    return rec


main(run_photo, pred)
