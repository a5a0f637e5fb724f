"""Agreement of lesion features computed on predicted masks vs on expert masks.

For each photo of a data set (``images/<id>.jpg`` + ``masks/<id>.png``) the default model segments
the lesion from the expert mask's tight box (``box_from_mask``), then every feature of
:class:`skinscreen.assess.LesionProperties` is computed on the predicted and on the expert mask
over the same photo. Prints a Markdown table (Pearson r, Spearman rho, mean relative error; for
counts the exact-agreement rate and mean absolute difference) and writes per-photo values as JSON.

    .venv/bin/python scripts/assess_agreement.py ../shared/data/lesions-dev --out /tmp/agree.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import pearsonr, spearmanr

from skinscreen.assess.features import LesionProperties
from skinscreen.io.image import load_image, load_mask
from skinscreen.predictor import LesionPredictor
from skinscreen.preprocess.transforms import box_from_mask

CONTINUOUS = (
    "area_px",
    "perimeter_px",
    "diameter_max_px",
    "diameter_equivalent_px",
    "asymmetry_major",
    "asymmetry_minor",
    "color_asymmetry_major",
    "color_asymmetry_minor",
    "compactness",
    "solidity",
    "border_edge_width_mean",
    "color_variegation",
    "ita_deg",
)
COUNTS = ("asymmetry_count", "color_asymmetry_count", "border_abrupt_count", "color_count")


def features(mask: np.ndarray, image: np.ndarray) -> dict:
    p = LesionProperties(mask, image)
    d = {k: getattr(p, k) for k in CONTINUOUS if k != "border_edge_width_mean"}
    widths = [w for w in p.border_edge_width if w is not None]
    d["border_edge_width_mean"] = float(np.mean(widths)) if widths else None
    d.update({k: getattr(p, k) for k in COUNTS})
    d["colors_present"] = p.colors_present
    d["skin_tone"] = p.skin_tone
    return d


def collect(root: Path, limit: int | None, threads: int) -> list[dict]:
    predictor = LesionPredictor(threads=threads)
    rows = []
    paths = sorted((root / "images").glob("*.jpg"))[:limit]
    t0 = time.perf_counter()
    for i, path in enumerate(paths):
        image = load_image(path)
        gt = load_mask(root / "masks" / f"{path.stem}.png")
        predictor.set_image(image)
        seg = predictor.predict(box=box_from_mask(gt))
        inter = np.logical_and(seg.mask, gt).sum()
        dice = 2 * inter / max(1, seg.mask.sum() + gt.sum())
        rows.append(
            {
                "id": path.stem,
                "dice": float(dice),
                "pred": features(seg.mask, image),
                "expert": features(gt, image),
            }
        )
        print(
            f"[{i + 1}/{len(paths)}] {path.stem} dice {dice:.3f} "
            f"({time.perf_counter() - t0:.0f} s)",
            file=sys.stderr,
        )
        predictor.reset_image()
    return rows


def summarise(rows: list[dict]) -> str:
    lines = [
        f"n = {len(rows)} photos; mask Dice (predicted vs expert): mean "
        f"{np.mean([r['dice'] for r in rows]):.3f}, median {np.median([r['dice'] for r in rows]):.3f}",
        "",
        "| feature | n | expert median | Pearson r | Spearman rho | mean relative error | median relative error |",
        "|---|---|---|---|---|---|---|",
    ]
    for k in CONTINUOUS:
        pairs = [
            (r["pred"][k], r["expert"][k])
            for r in rows
            if r["pred"][k] is not None and r["expert"][k] is not None
        ]
        if len(pairs) < 3:
            continue
        p, e = np.array(pairs, dtype=float).T
        rel = np.abs(p - e) / np.maximum(np.abs(e), 1e-9)
        lines.append(
            f"| {k} | {len(p)} | {np.median(e):.3g} | {pearsonr(p, e)[0]:.3f} | "
            f"{spearmanr(p, e)[0]:.3f} | {np.mean(rel):.1%} | {np.median(rel):.1%} |"
        )
    lines += [
        "",
        "| count feature | n | exact agreement | within 1 | mean abs difference | expert mean | predicted mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for k in COUNTS:
        p = np.array([r["pred"][k] for r in rows], dtype=float)
        e = np.array([r["expert"][k] for r in rows], dtype=float)
        lines.append(
            f"| {k} | {len(p)} | {np.mean(p == e):.0%} | {np.mean(np.abs(p - e) <= 1):.0%} | "
            f"{np.mean(np.abs(p - e)):.2f} | {e.mean():.2f} | {p.mean():.2f} |"
        )
    jac = [
        len(set(r["pred"]["colors_present"]) & set(r["expert"]["colors_present"]))
        / max(1, len(set(r["pred"]["colors_present"]) | set(r["expert"]["colors_present"])))
        for r in rows
    ]
    same_set = np.mean(
        [set(r["pred"]["colors_present"]) == set(r["expert"]["colors_present"]) for r in rows]
    )
    tone = [r for r in rows if r["expert"]["skin_tone"] is not None]
    tone_eq = np.mean([r["pred"]["skin_tone"] == r["expert"]["skin_tone"] for r in tone])
    lines += [
        "",
        f"colours present: identical set {same_set:.0%}, mean Jaccard {np.mean(jac):.3f}; "
        f"skin-tone category identical {tone_eq:.0%} (n = {len(tone)}).",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="data set folder with images/ and masks/")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="write per-photo values (JSON)")
    ap.add_argument("--load", type=Path, default=None, help="summarise a previous --out file")
    args = ap.parse_args()
    rows = (
        json.loads(args.load.read_text())
        if args.load
        else collect(args.root, args.limit, args.threads)
    )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    print(summarise(rows))


if __name__ == "__main__":
    main()
