"""``skinscreen evaluate --robustness`` split over worker processes, for a many-core machine.

Each photo's rows depend only on the photo, its expert mask and the seed (the box jitter is
seeded per photo and condition), so running shards of the photos in parallel and concatenating
their rows in photo order gives what one serial ``evaluate --robustness`` run gives; the report
(``robustness.md``, CSVs, PNGs) is written by the same ``build_report``.

    python scripts/experiments/robustness_parallel.py --images D/images --masks D/masks \
        --out OUT [--workers 8 --threads 2] [--margin 0.05] [--prompt gt-box|auto] \
        [--conditions all] [--json OUT/summary.json]

Uses the default predictor with the box check (its bundle must be built) unless
``--no-box-check``. Bundles come from ``$SKINSCREEN_HOME`` as usual.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def _shard(job: dict) -> tuple[list[dict], list[tuple[str, str]]]:
    from skinscreen.evaluate.dataset import find_pairs
    from skinscreen.evaluate.perturbations import select
    from skinscreen.evaluate.robustness import read_metadata, run_robustness
    from skinscreen.predictor import LesionPredictor

    pred = LesionPredictor(
        job["model"], threads=job["threads"], engine=job["engine"], box_check=job["box_check"]
    )
    wanted = set(job["ids"])
    pairs = [p for p in find_pairs(Path(job["images"]), Path(job["masks"])) if p.id in wanted]
    res = run_robustness(
        pred,
        pairs,
        select(job["conditions"]),
        prompt=job["prompt"],
        seed=job["seed"],
        metadata=read_metadata(Path(job["images"])),
        margin=job["margin"],
    )
    return res.rows, res.failures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", required=True)
    ap.add_argument("--masks", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="litemedsam")
    ap.add_argument("--engine", default=None)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--margin", type=float, default=0.0)
    ap.add_argument("--prompt", default="gt-box")
    ap.add_argument("--conditions", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-box-check", action="store_true")
    ap.add_argument("--json", default=None, help="also write the JSON summary here")
    a = ap.parse_args()

    from skinscreen.evaluate.dataset import find_pairs
    from skinscreen.evaluate.perturbations import select
    from skinscreen.evaluate.robustness import RobustnessResult, build_report, json_summary
    from skinscreen.io.write import write_files_atomic

    pairs = find_pairs(Path(a.images), Path(a.masks))
    ids = [p.id for p in pairs]
    n = max(1, min(a.workers, len(ids)))
    jobs = [
        {
            "images": a.images,
            "masks": a.masks,
            "ids": ids[k::n],
            "model": a.model,
            "engine": a.engine,
            "threads": a.threads,
            "box_check": not a.no_box_check,
            "conditions": a.conditions,
            "prompt": a.prompt,
            "seed": a.seed,
            "margin": a.margin,
        }
        for k in range(n)
    ]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(n) as ex:
        parts = list(ex.map(_shard, jobs))
    order = {pid: i for i, pid in enumerate(ids)}
    rows = sorted((r for rs, _ in parts for r in rs), key=lambda r: order[r["id"]])
    result = RobustnessResult(rows=rows, failures=[f for _, fs in parts for f in fs])
    conds = select(a.conditions)
    files = build_report(result, conds, title=Path(a.images).parent.name, model=a.model)
    write_files_atomic({Path(a.out) / name: data for name, data in files.items()})
    summary = json_summary(result, conds, model=a.model)
    summary.update(
        box_margin=a.margin,
        box_check=not a.no_box_check,
        prompt=a.prompt,
        photos=len(ids),
        failures=result.failures,
        wall_s=round(time.perf_counter() - t0, 1),
    )
    if a.json:
        Path(a.json).write_text(json.dumps(summary, indent=2))
    print(f"{a.images}: {len(ids)} photos, {len(rows)} rows in {summary['wall_s']} s -> {a.out}")


if __name__ == "__main__":
    main()
