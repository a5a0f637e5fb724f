"""The federated experiment: lesions-train's sources as sites, a patient-grouped held-out split per
site, and four ways to get a decoder, each scored on every site's held-out photos and on dev:

  (a) base        LiteMedSAM as is
  (b) alone-<s>   site s trains alone (rounds x local steps)
  (c) federated   Flower simulation, one virtual SuperNode per site (FedAvg; FedProx with
                  --strategy), with and without site-level DP (--dp-epsilon per round)
  (d) central     the pooled training photos (rounds x local steps x sites: the same compute)

Usage (photos per site, rounds and steps are the knobs; the full run is --per-site 0):

    PYTHONPATH=src python scripts/experiments/federated_sites.py OUT \
        --per-site 40 --rounds 3 --steps 30 [--dp-epsilon 8] [--views 1]

Writes OUT/results.json (every figure, wall times) and OUT/table.md. Sites are folders of
symlinks (OUT/sites/<site>/{images,masks}); nothing is copied. Phases already in results.json
are not rerun.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"  # --data overrides
SITES = {
    "isic2018": ("ISIC-2018-Task1",),
    "pad-ufes20": ("PAD-UFES-20",),
    "clinical": ("UWaterloo-VIP-DermIS", "UWaterloo-VIP-DermQuest"),
}


def make_sites(data: Path, out: Path, per_site: int, seed: int) -> list[Path]:
    from skinscreen.train.finetune import group_of

    train = data / "lesions-train"
    rows = list(csv.DictReader((train / "metadata.csv").open()))
    masks = {p.stem.removesuffix("_segmentation"): p for p in (train / "masks").glob("*.png")}
    images = {p.stem: p for p in (train / "images").iterdir()}
    dirs = []
    for site, sources in SITES.items():
        ids = sorted(r["id"] for r in rows if r["source"] in sources and r["id"] in masks)
        if per_site:  # whole patient groups, in a seeded order, until per_site photos
            groups: dict[str, list[str]] = {}
            for i in ids:
                groups.setdefault(group_of(i), []).append(i)
            names = sorted(groups)
            np.random.default_rng(seed).shuffle(names)
            pick: list[str] = []
            for g in names:
                if len(pick) >= per_site:
                    break
                pick += groups[g]
            ids = sorted(pick)
        d = out / "sites" / site
        for sub in ("images", "masks"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        for i in ids:
            for src, sub in ((images[i], "images"), (masks[i], "masks")):
                link = d / sub / src.name
                if not link.exists():
                    link.symlink_to(src)
        dirs.append(d)
    return dirs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--per-site", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--views", type=int, default=1)
    ap.add_argument("--strategy", default="fedavg")
    ap.add_argument("--dp-epsilon", type=float, default=0.0)
    ap.add_argument("--dp-clip", type=float, default=0.5)
    ap.add_argument("--dp-delta", type=float, default=1e-5)
    ap.add_argument("--dev-limit", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--data", type=Path, default=DATA, help="Folder with lesions-train, lesions-dev."
    )
    a = ap.parse_args()

    import copy

    from skinscreen.evaluate.dataset import find_pairs
    from skinscreen.train.cache import build_cache, cache_root, default_cache_dir
    from skinscreen.train.federated.apps import ServerSettings, SiteSettings
    from skinscreen.train.federated.asset import load_checkpoint_state
    from skinscreen.train.federated.simulate import simulate
    from skinscreen.train.federated.site import load_site
    from skinscreen.train.federated.task import (
        dice_scores,
        get_parameters,
        local_train,
        set_parameters,
        teacher_for,
    )
    from skinscreen.train.finetune import cached_examples

    a.out.mkdir(parents=True, exist_ok=True)
    res_path = a.out / "results.json"
    res = json.loads(res_path.read_text()) if res_path.is_file() else {"scores": {}, "wall_s": {}}
    res["args"] = {k: str(v) for k, v in vars(a).items()}

    def save() -> None:
        res_path.write_text(json.dumps(res, indent=1) + "\n")

    t0 = time.perf_counter()
    teacher = teacher_for("litemedsam")
    spec = teacher.spec
    dirs = make_sites(a.data, a.out, a.per_site, a.seed)
    sites = [load_site(d, teacher, a.views, 5, seed=a.seed) for d in dirs]
    dev = find_pairs(a.data / "lesions-dev" / "images", a.data / "lesions-dev" / "masks")
    if a.dev_limit:
        dev = dev[: a.dev_limit]
    root = cache_root(default_cache_dir(), "litemedsam", a.seed)
    build_cache(teacher, [p.image for p in dev], root, 1, a.seed, progress=False)
    dev_ex = cached_examples(root, {p.id: p.mask for p in dev}, 1)
    res["wall_s"].setdefault("embeddings", round(time.perf_counter() - t0, 1))
    res["sites"] = {
        s.name: {
            "train_photos": s.n_train_photos,
            "test_photos": s.n_test_photos,
            "skipped": s.skipped,
        }
        for s in sites
    }
    res["dev_photos"] = len(dev_ex)
    save()
    print(json.dumps(res["sites"]), file=sys.stderr)
    base = get_parameters(teacher.model)
    model = copy.deepcopy(teacher.model)

    def evaluate(name: str, params: dict) -> None:
        set_parameters(model, params)
        row = {s.name: dice_scores(model, spec, s.test) for s in sites}
        row["dev"] = dice_scores(model, spec, dev_ex)
        res["scores"][name] = row
        save()
        print(name, {k: round(v["gt-box-jitter"], 4) for k, v in row.items()}, file=sys.stderr)

    def trained(examples, steps: int, tag: str) -> dict:
        set_parameters(model, base)
        local_train(model, spec, examples, steps, a.lr, 0.0, a.seed, tag=tag)
        return get_parameters(model)

    if "base" not in res["scores"]:
        evaluate("base", base)
    total = a.rounds * a.steps
    for s in sites:
        key = f"alone-{s.name}"
        if key not in res["scores"]:
            t = time.perf_counter()
            evaluate(key, trained(s.train, total, key))
            res["wall_s"][key] = round(time.perf_counter() - t, 1)
    if "central" not in res["scores"]:
        t = time.perf_counter()
        pooled = [e for s in sites for e in s.train]
        evaluate("central", trained(pooled, total * len(sites), "central"))
        res["wall_s"]["central"] = round(time.perf_counter() - t, 1)
    runs = [("federated", 0.0)] + ([("federated-dp", a.dp_epsilon)] if a.dp_epsilon > 0 else [])
    for name, eps in runs:
        if name in res["scores"]:
            continue
        t = time.perf_counter()
        run_dir = a.out / name
        prov = simulate(
            dirs,
            ServerSettings(
                rounds=a.rounds,
                strategy=a.strategy,
                local_steps=a.steps,
                lr=a.lr,
                out_dir=str(run_dir),
                seed=a.seed,
            ),
            SiteSettings(
                views=a.views,
                holdout_folds=5,
                dp_epsilon=eps,
                dp_clip=a.dp_clip,
                dp_delta=a.dp_delta,
            ),
        )
        res["wall_s"][name] = round(time.perf_counter() - t, 1)
        res.setdefault("dp", {})[name] = prov.get("dp")
        evaluate(name, load_checkpoint_state(run_dir)["params"])
    res["wall_s"]["total_this_invocation"] = round(time.perf_counter() - t0, 1)
    save()
    names = [s.name for s in sites] + ["dev"]
    lines = [
        "| model | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for k, row in res["scores"].items():
        cells = [f"{row[n]['gt-box-jitter']:.4f} / {row[n]['gt-box']:.4f}" for n in names]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    (a.out / "table.md").write_text(
        "Dice gt-box-jitter / gt-box on each site's held-out photos and on dev\n\n"
        + "\n".join(lines)
        + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
