"""Measure the comparison noise floor and the change error on synthetic re-takes.

    PYTHONPATH=src python scripts/compare_noise_floor.py DEV_DIR TRAIN_DIR OUT.json [STEP]

For every STEP-th photo of DEV_DIR (images/, masks/): one simulated re-take of the unchanged
lesion (random rotation, zoom, shift, perspective, light, tint, blur, JPEG) and one re-take of the
lesion grown or shrunk by a known area factor (mask-guided warp), each compared with
``compare_photos`` (LiteMedSAM outlines, the expert mask's box in the earlier photo). Then the
real same-lesion pairs of TRAIN_DIR's PAD-UFES-20 photos (same patient and lesion id in
metadata.csv). Writes every figure and the floor (95th percentile of the unchanged re-takes and
the real pairs) to OUT.json; ``--asset`` also writes src/skinscreen/assets/compare-noise-floor.json.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from skinscreen.compare.change import compare_photos
from skinscreen.compare.noise import NoiseFloor
from skinscreen.compare.registration import apply_homography
from skinscreen.compare.synthetic import grow_lesion, retake, similarity_matrix
from skinscreen.errors import SkinscreenError
from skinscreen.io.image import load_image, load_mask
from skinscreen.predictor import LesionPredictor

#: the floor is not the gate: a huge floor would make the tool blind, so no artificial cap here
HUGE = NoiseFloor(9.0, 9.0, 9.0, 9.0, "measuring")


def _box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]


def _random_retake(rng, photo):
    h, w = photo.shape[:2]
    m = similarity_matrix(
        (h, w),
        rng.uniform(-25, 25),
        rng.uniform(0.8, 1.25),
        (rng.uniform(-0.04, 0.04) * w, rng.uniform(-0.04, 0.04) * h),
        tilt=rng.uniform(-8e-5, 8e-5),
    )
    kw = dict(
        gain=rng.uniform(0.8, 1.2),
        gamma=rng.uniform(0.8, 1.25),
        tint=tuple(rng.uniform(0.92, 1.08, 3)),
        blur_sigma=rng.uniform(0, 1.5),
        jpeg_quality=int(rng.integers(50, 96)),
    )
    return m, kw


def _row(c, extra: dict) -> dict:
    ch = c.report.change
    return {
        **extra,
        "area_rel": ch.area_rel,
        "diameter_max_rel": ch.diameter_max_rel,
        "asymmetry_delta": ch.asymmetry_delta,
        "border_delta": ch.border_delta,
        "colors_changed": bool(ch.colors_added or ch.colors_lost),
        "ita_delta_deg": ch.ita_delta_deg,
        "inliers": c.report.registration.inliers,
        "reprojection_error_px": c.report.registration.reprojection_error_px,
        "method": c.report.registration.method,
    }


def main(argv: list[str]) -> None:
    dev, train, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    step = int(argv[3]) if len(argv) > 3 and not argv[3].startswith("--") else 3
    rng = np.random.default_rng(21)
    pred = LesionPredictor("litemedsam")
    unchanged, changed, failures = [], [], []
    ids = sorted(p.stem for p in (dev / "images").glob("*.jpg"))[::step]
    t0 = time.time()
    for i, sid in enumerate(ids):
        photo = load_image(dev / "images" / f"{sid}.jpg")
        mask = load_mask(dev / "masks" / f"{sid}.png")
        h, w = mask.shape
        grid = np.array(
            [[x, y] for x in np.linspace(0, w - 1, 5) for y in np.linspace(0, h - 1, 5)]
        )
        for kind in ("unchanged", "changed"):
            factor = 1.0 if kind == "unchanged" else float(rng.choice([0.8, 0.9, 1.15, 1.3]))
            src, m2 = (photo, mask) if factor == 1.0 else grow_lesion(photo, mask, factor)
            truth = float(m2.sum() / mask.sum() - 1.0)
            hmat, kw = _random_retake(rng, photo)
            later = retake(src, hmat, **kw)
            try:
                c = compare_photos(photo, later, pred, box=_box(mask), noise_floor=HUGE)
            except SkinscreenError as e:
                failures.append({"id": sid, "kind": kind, "error": str(e)})
                continue
            err = apply_homography(c.registration.matrix, grid) - apply_homography(hmat, grid)
            row = _row(
                c,
                {
                    "id": sid,
                    "truth_area_rel": round(truth, 4),
                    "registration_error_max_px": round(float(np.abs(err).max()), 3),
                    "registration_error_rms_px": round(float(np.sqrt((err**2).sum(1).mean())), 3),
                    "retake": {k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()},
                },
            )
            (unchanged if kind == "unchanged" else changed).append(row)
        print(f"{i + 1}/{len(ids)} {sid} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)

    # real same-lesion pairs: PAD-UFES-20 ids are PAD_PAT_<patient>_<lesion>_<image>
    groups = defaultdict(list)
    with open(train / "metadata.csv") as f:
        for r in csv.DictReader(f):
            if r["source"] == "PAD-UFES-20":
                parts = r["id"].split("_")
                groups[(parts[2], parts[3])].append(r["id"])
    real = []
    for _key, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        a, b = sorted(members)[:2]
        pa, pb = (
            load_image(train / "images" / f"{a}.jpg"),
            load_image(train / "images" / f"{b}.jpg"),
        )
        ma = load_mask(train / "masks" / f"{a}.png")
        try:
            c = compare_photos(pa, pb, pred, box=_box(ma), noise_floor=HUGE)
            real.append(_row(c, {"earlier": a, "later": b}))
        except SkinscreenError as e:
            failures.append({"earlier": a, "later": b, "error": str(e)})

    def q95(key: str, rows: list[dict]) -> float:
        v = np.abs([r[key] for r in rows])
        return float(np.percentile(v, 95)) if len(v) else float("nan")

    base = unchanged + real
    floor = {
        "area_rel": round(q95("area_rel", base), 3),
        "diameter_max_rel": round(q95("diameter_max_rel", base), 3),
        "asymmetry": round(q95("asymmetry_delta", base), 3),
        "border": round(q95("border_delta", base), 3),
    }
    err_model = [abs(r["area_rel"] - r["truth_area_rel"]) for r in changed]
    summary = {
        "floor": floor,
        "n_unchanged": len(unchanged),
        "n_changed": len(changed),
        "n_real_pairs": len(real),
        "failures": failures,
        "registration_error_max_px_median": float(
            np.median([r["registration_error_max_px"] for r in unchanged])
        ),
        "registration_error_max_px_p95": float(
            np.percentile([r["registration_error_max_px"] for r in unchanged], 95)
        ),
        "change_abs_error_median": float(np.median(err_model)) if err_model else None,
        "change_abs_error_p90": float(np.percentile(err_model, 90)) if err_model else None,
        "colors_changed_unchanged_fraction": float(np.mean([r["colors_changed"] for r in base])),
        "unchanged": unchanged,
        "changed": changed,
        "real_pairs": real,
    }
    out.write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if not isinstance(v, list)}, indent=2))
    if "--asset" in argv:
        asset = (
            Path(__file__).resolve().parents[1] / "src/skinscreen/assets/compare-noise-floor.json"
        )
        asset.write_text(
            json.dumps(
                {
                    "floor": floor,
                    "provenance": (
                        f"95th percentile of |change| over {len(unchanged)} simulated re-takes of "
                        f"unchanged ISIC 2017 dev lesions (every {step}th dev photo; rotation "
                        "+-25 deg, zoom 0.8-1.25, perspective, light gain 0.8-1.2, gamma "
                        "0.8-1.25, tint +-8%, blur 0-1.5 px, JPEG 50-95) and "
                        f"{len(real)} real same-lesion PAD-UFES-20 pairs, LiteMedSAM outlines "
                        "from the expert mask's box (scripts/compare_noise_floor.py)"
                    ),
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
