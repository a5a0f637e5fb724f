"""``skinscreen train-localiser``: train the learned lesion localiser used by automatic mode."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("train-localiser")
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Labelled dataset folder: images/, masks/<id>.png, optional metadata.csv (modality). "
    "Never the photos you report on.",
)
@click.option(
    "--model", default="litemedsam", show_default=True, help="Model whose embedding the head reads."
)
@click.option(
    "--folds",
    type=int,
    default=5,
    show_default=True,
    help="k of the patient-grouped k-fold CV (0: no CV).",
)
@click.option(
    "--epochs", type=int, default=10, show_default=True, help="Passes over the training photos."
)
@click.option(
    "--margins",
    default="0,0.05,0.1,0.15",
    show_default=True,
    help="Box margins (share of the box per side) scored in CV; the best threshold-Jaccard is shipped.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Embedding cache (default: $SKINSCREEN_HOME/distill-cache; filled when missing).",
)
@click.option(
    "--views",
    type=click.IntRange(1, 2),
    default=1,
    show_default=True,
    help="Cached views per photo to train on: 1 the photo, 2 also its mirror image.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for folds and initialisation."
)
@click.option(
    "--ship",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="After CV, train on all photos and write the head here as ONNX (+ a .json with "
    "provenance and the CV figures), e.g. src/skinscreen/assets/litemedsam-localiser.onnx.",
)
@click.option(
    "--data-licence",
    default="the licences of the training photos apply to weights learned from them: see the "
    "data folder's SOURCES.md",
    show_default=False,
    help="Licence note recorded with the shipped head (the weights derive from the photos).",
)
@click.option(
    "--heads",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Heads trained elsewhere on many augmented views (python -m "
    "skinscreen.train.localiser_views on a GPU, one heads-<config>.pt file): score their "
    "fold heads here on this machine's embeddings and ship their final head; no training here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the CV figures as JSON on stdout.")
def command(
    data, model, folds, epochs, margins, cache_dir, views, seed, ship, data_licence, heads, as_json
):
    """Train the automatic-mode localiser head on labelled photos and report k-fold CV figures.

    The head reads the image embedding the encoder already computes, so automatic mode costs
    no second encoder run. Figures: Dice, Jaccard, threshold-Jaccard (ISIC rule) of the decoder
    prompted with the localiser's box, per modality, on the held-out folds.
    """
    import csv
    import os
    import shlex
    import sys
    import tempfile

    from skinscreen.errors import SkinscreenError
    from skinscreen.train.cache import build_cache, cache_root, default_cache_dir
    from skinscreen.train.data import data_manifest, list_images
    from skinscreen.train.localiser import (
        cross_validate,
        export_onnx,
        head_from_state,
        load_data,
        maps_from_fold_heads,
        score_maps,
        train_head,
    )
    from skinscreen.train.teacher import load_teacher

    try:
        margin_list = tuple(float(m) for m in margins.split(","))
    except ValueError:
        raise click.BadParameter(
            "comma-separated numbers, e.g. 0,0.05,0.1", param_hint="--margins"
        ) from None
    masks_dir = data / "masks"
    if not masks_dir.is_dir():
        raise SkinscreenError(f"{masks_dir} does not exist: --data needs images/ and masks/")
    images = [p for p in list_images([data]) if (masks_dir / f"{p.stem}.png").is_file()]
    if not images:
        raise SkinscreenError(f"no photo in {data}/images has a mask <id>.png in {masks_dir}")
    teacher = load_teacher(model, use_onnx_bundle=True)
    root = cache_root(cache_dir or default_cache_dir(), model, seed)
    n = build_cache(teacher, images, root, views=views, seed=seed)
    click.echo(f"embedding cache {root}: {n} new entries", err=True)
    ds = load_data(root, masks_dir, views=tuple(range(views)))
    wanted = {p.stem for p in images}
    keep = [r for r, i in enumerate(ds.ids) if i in wanted]
    ds.emb, ds.valid, ds.target = ds.emb[keep], ds.valid[keep], ds.target[keep]
    ds.ids = [ds.ids[r] for r in keep]
    ds.views = [ds.views[r] for r in keep]
    groups = {}
    meta = data / "metadata.csv"
    if meta.is_file():
        with meta.open() as f:
            groups = {r["id"]: r.get("modality", "") for r in csv.DictReader(f)}
    result: dict = {
        "model": model,
        "photos": len(set(ds.ids)),
        "views": views,
        "epochs": epochs,
        "seed": seed,
    }
    trained = None
    if heads is not None:
        import torch

        trained = torch.load(heads, map_location="cpu", weights_only=True)
        cfg = trained["config"]
        if trained.get("ids") is not None and sorted(trained["ids"]) != sorted(set(ds.ids)):
            raise SkinscreenError(
                f"{heads} was trained on other photos than {data} holds: the folds would not "
                "match; pass the --data the heads were trained on"
            )
        folds = len(trained["folds"])
        result.update(
            views=trained.get("views", "photo, mirror and random views"),
            epochs=cfg["epochs"],
            width=cfg["width"],
            trained_with=trained.get("command", "python -m skinscreen.train.localiser_views"),
        )
    best_margin = margin_list[0]
    if folds:
        from skinscreen.predictor import LesionPredictor

        if trained is not None:
            maps = maps_from_fold_heads(ds, trained["folds"], trained["config"]["width"], seed)
        else:
            maps = cross_validate(
                ds, k=folds, epochs=epochs, seed=seed, log=lambda s: click.echo(s, err=True)
            )
        predictor = LesionPredictor(model, variant="onnx-fp32", threads=1)
        cv = score_maps(maps, root, masks_dir, margin_list, predictor, groups)
        best_margin = max(margin_list, key=lambda m: cv[m]["all"]["threshold_jaccard"])
        result["cv"] = {"folds": folds, "by_margin": {str(m): v for m, v in cv.items()}}
        result["box_margin"] = best_margin
        for m, v in cv.items():
            for g, s in v.items():
                click.echo(
                    f"margin {m:.2f} {g:12s} n={s['n']:4d} Dice {s['dice']:.3f} "
                    f"Jaccard {s['jaccard']:.3f} thr-Jaccard {s['threshold_jaccard']:.3f} "
                    f"box IoU {s['box_iou']:.3f} not found {s['not_found']}",
                    err=True,
                )
    if ship is not None:
        import numpy as np

        if trained is not None:
            head, curve = head_from_state(trained["final"], trained["config"]["width"]), []
        else:
            head, curve = train_head(ds, np.arange(len(ds.ids)), epochs=epochs, seed=seed)
        ship = Path(ship)
        ship.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{ship.name}.", dir=ship.parent)
        os.close(fd)
        try:
            export_onnx(head, Path(tmp))
            info = dict(
                result,
                box_margin=best_margin,
                loss_curve=[round(c, 5) for c in curve],
                command="skinscreen train-localiser "
                + " ".join(shlex.quote(a) for a in sys.argv[2:]),
                data=data_manifest(images),
                data_licence=data_licence,
                note="A screening aid, never a diagnosis.",
            )
            meta_path = ship.with_suffix(".json")
            meta_tmp = meta_path.with_name(f".{meta_path.name}.tmp")
            meta_tmp.write_text(json.dumps(info, indent=1) + "\n")
            os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
            os.replace(tmp, ship)
            os.replace(meta_tmp, meta_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        result["shipped"] = str(ship)
        click.echo(f"localiser written to {ship} (+ {ship.with_suffix('.json').name})", err=True)
    if as_json:
        click.echo(json.dumps(result, indent=1))
