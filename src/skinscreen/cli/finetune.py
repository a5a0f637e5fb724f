"""``skinscreen finetune``: fine-tune the mask decoder on labelled skin photos, judged by k-fold CV."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("finetune")
@click.option(
    "--images",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Labelled photos (never the photos you report on).",
)
@click.option(
    "--masks",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Expert masks, <id>.png or <id>_segmentation.png.",
)
@click.option(
    "--model",
    default="litemedsam",
    show_default=True,
    help="Base model (its encoder stays frozen).",
)
@click.option(
    "--folds", type=int, default=5, show_default=True, help="k of the patient-grouped k-fold CV."
)
@click.option(
    "--steps",
    type=int,
    default=2000,
    show_default=True,
    help="Training steps (one photo each) per fold.",
)
@click.option("--lr", type=float, default=1e-5, show_default=True, help="Learning rate (AdamW).")
@click.option("--prompt-encoder", is_flag=True, help="Also fine-tune the prompt encoder.")
@click.option(
    "--views",
    type=int,
    default=2,
    show_default=True,
    help="Cached views per photo used for training (0 photo, 1 mirror, ...).",
)
@click.option(
    "--limit", type=int, default=None, help="Use only the first N labelled photos (quick runs)."
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Embedding cache (default: $SKINSCREEN_HOME/distill-cache).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for folds, views and order."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Writes cv.json; and decoder.safetensors only if the fine-tuned decoder beats the base "
    "in CV. Default: $SKINSCREEN_HOME/finetune-runs/<model>-seed<seed>.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the CV result as JSON on stdout.")
def command(
    images,
    masks,
    model,
    folds,
    steps,
    lr,
    prompt_encoder,
    views,
    limit,
    cache_dir,
    seed,
    out_dir,
    as_json,
):
    """Fine-tune MODEL's mask decoder with Dice + BCE and jittered box prompts.

    Reported with k-fold cross-validation grouped by patient; the fine-tuned decoder is written
    only if it beats the base model in every fold (on gt-box-jitter) and on average (gt-box).

    \b
    Example:
      skinscreen finetune --folds 5 --steps 2000 --out runs/ft --json
    """
    from skinscreen.export import require_torch

    require_torch("skinscreen finetune")
    import torch

    from skinscreen.errors import SkinscreenError
    from skinscreen.evaluate.dataset import find_pairs
    from skinscreen.train.cache import build_cache, cache_root, default_cache_dir
    from skinscreen.train.distill import seed_everything, select_device
    from skinscreen.train.finetune import cached_examples, cross_validate, train_decoder
    from skinscreen.train.teacher import load_teacher

    select_device("cpu")
    seed_everything(seed)
    pairs = find_pairs(images, masks)[:limit] if limit else find_pairs(images, masks)
    if folds < 2:
        raise click.BadParameter("--folds must be at least 2")
    teacher = load_teacher(model, use_onnx_bundle=True)
    root = cache_root(cache_dir or default_cache_dir(), model, seed)
    build_cache(teacher, [p.image for p in pairs], root, views, seed)
    examples = cached_examples(root, {p.id: p.mask for p in pairs}, views)
    if not examples:
        raise SkinscreenError("no labelled photo has a cached embedding")
    res = cross_validate(
        teacher.model, teacher.spec, examples, folds, steps, lr, prompt_encoder, seed
    )
    res.update({"model": model, "n_photos": len(pairs), "views": views, "seed": seed})
    if out_dir is None:
        from skinscreen import paths

        out_dir = paths.home() / "finetune-runs" / f"{model}-seed{seed}"
    out_dir.mkdir(parents=True, exist_ok=True)
    if res["beats_base"]:
        from safetensors.torch import save_file

        masks_dir_of = {e.id: e.mask.parent for e in examples}
        tuned = train_decoder(
            teacher.model,
            teacher.spec,
            examples,
            masks_dir_of,
            steps,
            lr,
            prompt_encoder,
            seed,
            True,
        )
        parts = {"mask_decoder": tuned.mask_decoder} | (
            {"prompt_encoder": tuned.prompt_encoder} if prompt_encoder else {}
        )
        state = {
            f"{n}.{k}": v.detach().to(torch.float16).contiguous()
            for n, m in parts.items()
            for k, v in m.state_dict().items()
        }
        save_file(
            state, str(out_dir / "decoder.safetensors"), metadata={"base": model, "seed": str(seed)}
        )
        res["weights"] = str(out_dir / "decoder.safetensors")
    tmp = out_dir / ".cv.json.tmp"
    tmp.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    tmp.replace(out_dir / "cv.json")
    if as_json:
        click.echo(json.dumps(res))
    else:
        verdict = (
            "beats the base model: decoder written"
            if res["beats_base"]
            else "does NOT beat the base model: nothing shipped"
        )
        click.echo(
            f"{folds}-fold CV on {len(pairs)} photos: gt-box {res['base_gt-box_mean']:.4f} -> "
            f"{res['finetuned_gt-box_mean']:.4f}, gt-box-jitter {res['base_gt-box-jitter_mean']:.4f} -> "
            f"{res['finetuned_gt-box-jitter_mean']:.4f}; fine-tuned {verdict} ({out_dir / 'cv.json'})"
        )
