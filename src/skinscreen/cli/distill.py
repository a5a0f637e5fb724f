"""``skinscreen distill``: train a smaller, faster student image encoder from a teacher."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("distill")
@click.option(
    "--data",
    "data",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of training photos (or a dataset folder with images/); repeatable; needed to "
    "train. Never the photos you report on.",
)
@click.option(
    "--teacher", default="litemedsam", show_default=True, help="litemedsam | medsam-vitb."
)
@click.option(
    "--teacher-checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Teacher weights (.pth); needed for medsam-vitb (official MedSAM format).",
)
@click.option(
    "--student",
    default="repvit-s",
    show_default=True,
    help="Student architecture (repvit-s | repvit-xs).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run directory: checkpoint.pt, history.jsonl, snapshots/ (resumed when present). "
    "Default: $SKINSCREEN_HOME/distill-runs/<student>-<teacher>-seed<seed>.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Teacher-embedding cache (default: $SKINSCREEN_HOME/distill-cache; never the repo).",
)
@click.option(
    "--views",
    type=int,
    default=2,
    show_default=True,
    help="Cached views per photo (0 photo, 1 mirror, >=2 random augmentations); 0: use the cache as it is.",
)
@click.option(
    "--cache-only", is_flag=True, help="Only fill the teacher-embedding cache, then stop."
)
@click.option(
    "--online",
    is_flag=True,
    help="No cache: fresh random augmentations, teacher run per batch (GPU).",
)
@click.option(
    "--steps",
    type=int,
    default=20000,
    show_default=True,
    help="Distillation steps (length of the LR schedule).",
)
@click.option(
    "--minutes", type=float, default=None, help="Stop after this much wall time (resume later)."
)
@click.option(
    "--until-step",
    type=int,
    default=None,
    help="Pause at exactly this step (resume later with the same flags).",
)
@click.option(
    "--batch-size", type=int, default=4, show_default=True, help="Photos per training step."
)
@click.option(
    "--lr", type=float, default=2e-3, show_default=True, help="Peak learning rate (AdamW)."
)
@click.option("--warmup", type=int, default=50, show_default=True, help="Linear LR warm-up steps.")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for views, order and init."
)
@click.option(
    "--device", default="auto", show_default=True, help="auto (CUDA if present) | cpu | cuda."
)
@click.option(
    "--e2e-steps",
    type=int,
    default=0,
    show_default=True,
    help="Extra end-to-end steps with a mask loss (needs --masks).",
)
@click.option(
    "--masks",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Expert masks of the training photos (e2e stage).",
)
@click.option(
    "--eval-images",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Dev photos for Dice during training.",
)
@click.option(
    "--eval-masks",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Expert masks for --eval-images (<id>.png), to report Dice during training.",
)
@click.option(
    "--eval-every",
    type=int,
    default=0,
    show_default=True,
    help="Evaluate every N steps (0: never).",
)
@click.option(
    "--eval-limit", type=int, default=None, help="Evaluate on the first N dev photos only."
)
@click.option(
    "--save-every", type=int, default=50, show_default=True, help="Checkpoint every N steps."
)
@click.option(
    "--snapshot-every",
    type=int,
    default=0,
    show_default=True,
    help="Keep the weights of every N-th step (learning curve).",
)
@click.option(
    "--refresh-every",
    type=int,
    default=0,
    show_default=True,
    help="Re-list the cache every N steps (while it is still being filled).",
)
@click.option(
    "--max-entries",
    type=int,
    default=0,
    show_default=True,
    help="Train on the first N cached (view, photo) entries only, sorted (0: all); makes a run on a partly filled cache reproducible.",
)
@click.option("--no-resume", is_flag=True, help="Refuse to continue an existing run in --out.")
@click.option(
    "--ship",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="After training, write the student as fp16 safetensors here (+ a .json provenance file).",
)
@click.option(
    "--export-bundle",
    "export_model",
    default=None,
    help="Only export the registered student MODEL (committed weights) to its ONNX bundle.",
)
@click.option("--force", is_flag=True, help="With --export-bundle: replace an existing bundle.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def command(**kw):
    """Distil a compact student image encoder from a teacher (MobileSAM-style, decoupled).

    The student learns to reproduce the teacher's (256, 64, 64) image embeddings (MSE); the
    teacher's prompt encoder and mask decoder are reused. Runs are resumable (same --out),
    stop at --steps or --minutes, use a GPU when present. Photos used here must not be the
    photos you evaluate on.

    \b
    Examples:
      skinscreen distill --data train/ --cache-only --views 2
      skinscreen distill --data train/ --out runs/s0 --minutes 60 --eval-images dev/images --eval-masks dev/masks --eval-every 200
      skinscreen distill --data train/ --out runs/s0 --device cuda --online --steps 200000 --batch-size 32
      skinscreen distill --export-bundle skinscreen-student-v1
    """
    from skinscreen.export import require_torch

    require_torch("skinscreen distill")
    if kw["export_model"]:
        _export(kw)
        return
    _train(kw)


def _export(kw: dict) -> None:
    from skinscreen.train.ship import export_student_bundle

    root = export_student_bundle(kw["export_model"], force=kw["force"])
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    p = manifest["parity"]
    res = {"bundle": str(root), "parity": p}
    click.echo(
        json.dumps(res)
        if kw["as_json"]
        else f"bundle written to {root} (mask Dice vs PyTorch min {p['mask_dice_min']:.4f})"
    )


def _train(kw: dict) -> None:
    import time

    from skinscreen.errors import SkinscreenError
    from skinscreen.train.cache import build_cache, cache_root, default_cache_dir
    from skinscreen.train.data import data_manifest, list_images
    from skinscreen.train.distill import DistillConfig, Distiller, select_device
    from skinscreen.train.teacher import load_teacher, student_input_spec

    data = list(kw["data"])
    if not data:
        raise click.UsageError(
            "no training photos: give --data FOLDER (photos, or a dataset folder with images/)"
        )
    images = list_images(data)
    device = select_device(kw["device"])
    teacher = load_teacher(
        kw["teacher"], kw["teacher_checkpoint"], device, use_onnx_bundle=not kw["online"]
    )
    root = cache_root(kw["cache_dir"] or default_cache_dir(), kw["teacher"], kw["seed"])
    if not kw["online"] and kw["views"] > 0:
        n = build_cache(teacher, images, root, kw["views"], kw["seed"])
        click.echo(f"teacher-embedding cache {root}: {n} new entries", err=True)
        if kw["cache_only"]:
            return
    evaluator = None
    if kw["eval_every"]:
        if not (kw["eval_images"] and kw["eval_masks"]):
            raise click.UsageError("--eval-every needs --eval-images and --eval-masks")
        from skinscreen.train.evaluate import box_dice, dev_pairs

        train_stems = {p.stem for p in images}
        pairs = dev_pairs(kw["eval_images"], kw["eval_masks"], kw["eval_limit"])
        if train_stems & {p.id for p in pairs}:
            raise SkinscreenError(
                "the evaluation photos overlap the training photos: use a held-out set"
            )
        sspec = student_input_spec(teacher.spec)

        def evaluator(student):
            return box_dice(student, teacher.model, sspec, pairs, ("gt-box",), device)

    if kw["out_dir"] is None:
        from skinscreen import paths

        name = f"{kw['student']}-{kw['teacher']}-seed{kw['seed']}"
        kw["out_dir"] = paths.home() / "distill-runs" / name
    cfg = DistillConfig(
        student=kw["student"],
        teacher=kw["teacher"],
        steps=kw["steps"],
        batch_size=kw["batch_size"],
        lr=kw["lr"],
        warmup=kw["warmup"],
        seed=kw["seed"],
        online=kw["online"],
        e2e_steps=kw["e2e_steps"],
        save_every=kw["save_every"],
        eval_every=kw["eval_every"],
        refresh_every=kw["refresh_every"],
        snapshot_every=kw["snapshot_every"],
        max_entries=kw["max_entries"],
    )
    if kw["e2e_steps"] and kw["masks"] is None:
        raise click.UsageError("--e2e-steps needs --masks (expert masks of the training photos)")
    run = Distiller(
        cfg,
        kw["out_dir"],
        teacher,
        device,
        cache_root=root,
        images=images,
        masks_dir=kw["masks"],
        evaluator=evaluator,
    )
    if (run.checkpoint_path).is_file() and kw["no_resume"]:
        raise SkinscreenError(
            f"{kw['out_dir']} already holds a run: choose a new --out or drop --no-resume"
        )
    resumed = run.resume()
    click.echo(
        f"{'resuming at step ' + str(run.step) if resumed else 'new run'} on {device}", err=True
    )
    t0 = time.time()
    res = run.run(minutes=kw["minutes"], until_step=kw["until_step"])
    res["seconds"] = round(time.time() - t0, 1)
    res["run_dir"] = str(kw["out_dir"])
    if kw["ship"]:
        from skinscreen.train.ship import save_student_weights

        meta = {"arch": cfg.student, "teacher": cfg.teacher, "step": run.step, "seed": cfg.seed}
        path = save_student_weights(run.student, kw["ship"], meta)
        import shlex
        import sys

        train_argv = [a for a in sys.argv[1:]]
        used = images
        if not cfg.online:
            stems = {img.name.removesuffix(".img.npy") for _, img in run.batches.entries}
            used = [p for p in images if p.stem in stems]
        prov = {
            "command": "skinscreen " + shlex.join(train_argv),
            "metadata": meta,
            "config": cfg.__dict__,
            "data": data_manifest(used),
            "cache_views": kw["views"],
        }
        path.with_suffix(".json").write_text(json.dumps(prov, indent=1) + "\n", encoding="utf-8")
        res["shipped"] = str(path)
    click.echo(json.dumps(res) if kw["as_json"] else f"done: {res}")
