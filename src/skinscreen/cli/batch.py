"""``skinscreen batch segment|assess|evaluate``: a whole archive on Ray Data (the ``scale`` extra)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import click

from skinscreen.cli.common import box_margin_option, model_options, tta_option

EPILOG = (
    "SOURCE: a folder (its image files), a text list of paths (one a line), a CSV with a 'path' "
    "column or a Parquet table with one (--path-column). Per photo OUT gets the files the "
    "single-process verb writes, plus results.parquet (one row per photo: status, error, box, "
    "timings, features / metrics / quality) and summary.json. Without --ray-address a local Ray "
    "starts on 127.0.0.1 and stops afterwards. Exit code 1 when any photo failed. Reference: "
    "docs/batch.md. A screening aid, never a diagnosis."
)


def _common(f: Callable) -> Callable:
    f = tta_option(f)
    f = model_options(f)
    for opt in reversed(
        [
            click.argument("source", type=click.Path(exists=True, path_type=Path)),
            click.option(
                "--out",
                "out_dir",
                required=True,
                type=click.Path(file_okay=False, path_type=Path),
                help="Output folder (on storage every node sees, on a cluster).",
            ),
            click.option(
                "--ray-address",
                default=None,
                envvar="RAY_ADDRESS",
                metavar="ADDR",
                help="Join this Ray cluster (e.g. 10.0.0.5:6379, or $RAY_ADDRESS); default: a "
                "local Ray on 127.0.0.1 for this run only.",
            ),
            click.option(
                "--workers",
                type=click.IntRange(1, 100_000),
                default=None,
                help="Actors, one predictor each (default: local, 1 per 2 CPUs; cluster, its "
                "CPUs / --cpus-per-worker).",
            ),
            click.option(
                "--cpus-per-worker",
                type=click.FloatRange(0.01, 1024),
                default=None,
                help="Ray CPUs each actor reserves (may be fractional; default: local, just "
                "under CPUs / workers; cluster, 1). Engine threads: --threads (default: local, "
                "CPUs / workers; cluster, this rounded down).",
            ),
            click.option(
                "--resume",
                is_flag=True,
                help="Finish an earlier run into the same --out: complete photos are skipped, "
                "partial and failed ones redone.",
            ),
            click.option(
                "--path-column",
                default="path",
                show_default=True,
                help="The photo path column of a CSV or Parquet SOURCE.",
            ),
            click.option(
                "--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout."
            ),
        ]
    ):
        f = opt(f)
    return f


def _job(verb: str, out_dir: Path, model, variant, bundle_dir, threads, **extra):
    from skinscreen.batch.work import Job
    from skinscreen.cli.common import _TTA_META, _selected, selected_box_check, selected_engine

    return Job(
        verb=verb,
        out_dir=str(out_dir.resolve()),
        model=model,
        variant=variant,
        bundle_dir=str(bundle_dir.resolve()) if bundle_dir else None,
        threads=threads,
        engine=selected_engine(),
        box_check=selected_box_check(),
        tta=bool(_selected(_TTA_META)),
        **extra,
    )


def _go(job, source, out_dir, ray_address, workers, cpus_per_worker, resume, path_column, as_json):
    from skinscreen.batch.driver import run_batch
    from skinscreen.disclaimer import DISCLAIMER

    s = run_batch(
        job,
        source,
        resume=resume,
        address=ray_address,
        workers=workers,
        cpus_per_worker=cpus_per_worker,
        path_column=path_column,
    )
    rate = f"{s['photos_per_s']:.2f} photos/s" if s["photos_per_s"] else "nothing to do"
    click.echo(
        f"batch {job.verb}: {s['processed']} photo(s) in {s['seconds']:.1f} s on "
        f"{s['workers']} worker(s), {rate}: {s['ok']} ok, {s['failed']} failed, "
        f"{s['skipped']} skipped (complete); {s['total_ok']}/{s['photos']} photos have results "
        f"in {out_dir}/ (results.parquet, summary.json)",
        err=True,
    )
    if "metrics" in s:
        m = s["metrics"]
        click.echo(
            f"  {m['n']} scored: Dice {m['dice']}, Jaccard {m['jaccard']}, threshold-Jaccard "
            f"{m['threshold_jaccard']}, failure rate {m['failure_rate']}",
            err=True,
        )
    if as_json:
        click.echo(json.dumps(s, indent=2))
    click.echo(DISCLAIMER, err=True)
    if s["total_failed"]:
        click.echo(
            f"{s['total_failed']} photo(s) failed: their rows in results.parquet give the error",
            err=True,
        )
        sys.exit(1)


@click.group("batch", epilog=EPILOG)
def command() -> None:
    """Run segment, assess or evaluate over a whole archive on Ray Data: a pool of workers, one
    model each; resumable (--resume); a failed photo is a row with its error.

    Needs the scale extra: pip install "skinscreen[scale]".
    """


@command.command("segment", epilog=EPILOG)
@_common
@box_margin_option
def segment(
    source,
    out_dir,
    ray_address,
    workers,
    cpus_per_worker,
    resume,
    path_column,
    as_json,
    model,
    variant,
    bundle_dir,
    threads,
    box_margin,
):
    """Segment every photo of SOURCE (automatic box): <stem>_mask.png, <stem>_overlay.png,
    <stem>.json per photo, as `skinscreen segment --out` writes them."""
    job = _job("segment", out_dir, model, variant, bundle_dir, threads, box_margin=box_margin)
    _go(job, source, out_dir, ray_address, workers, cpus_per_worker, resume, path_column, as_json)


@command.command("assess", epilog=EPILOG)
@_common
@box_margin_option
@click.option(
    "--mm-per-pixel",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Scale: mm of skin per photo pixel (every photo).",
)
@click.option(
    "--dermoscope",
    default=None,
    metavar="PRESET",
    help="Scale from a field-of-view preset: fov10, fov15, fov20, fov25.",
)
@click.option(
    "--color-constancy", is_flag=True, help="Shades-of-Gray correction before measuring colours."
)
def assess(
    source,
    out_dir,
    ray_address,
    workers,
    cpus_per_worker,
    resume,
    path_column,
    as_json,
    model,
    variant,
    bundle_dir,
    threads,
    box_margin,
    mm_per_pixel,
    dermoscope,
    color_constancy,
):
    """Segment and measure every photo of SOURCE: <stem>.json, <stem>.html, <stem>_mask.png and
    pictures per photo, as `skinscreen assess --out` writes them; features and quality in
    results.parquet."""
    from skinscreen.assess.scale import DERMOSCOPE_PRESETS

    if mm_per_pixel is not None and dermoscope is not None:
        raise click.UsageError("give either --mm-per-pixel or --dermoscope, not both")
    if dermoscope is not None and dermoscope not in DERMOSCOPE_PRESETS:
        raise click.BadParameter(
            f"unknown preset '{dermoscope}': choose one of {', '.join(DERMOSCOPE_PRESETS)}",
            param_hint="--dermoscope",
        )
    job = _job(
        "assess",
        out_dir,
        model,
        variant,
        bundle_dir,
        threads,
        box_margin=box_margin,
        mm_per_pixel=mm_per_pixel,
        dermoscope=dermoscope,
        color_constancy=color_constancy,
    )
    _go(job, source, out_dir, ray_address, workers, cpus_per_worker, resume, path_column, as_json)


@command.command("evaluate", epilog=EPILOG)
@_common
@click.option(
    "--masks",
    "masks_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of expert masks (<id>.png or <id>_segmentation.png); or a 'mask' column in SOURCE.",
)
@click.option(
    "--prompt",
    type=click.Choice(("gt-box", "gt-box-jitter", "auto")),
    default="gt-box",
    show_default=True,
    help="How each photo is prompted (as `skinscreen evaluate`).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for gt-box-jitter.")
@click.option(
    "--margin",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Grow the expert box by this fraction per side (as `skinscreen evaluate --margin`).",
)
def evaluate(
    source,
    out_dir,
    ray_address,
    workers,
    cpus_per_worker,
    resume,
    path_column,
    as_json,
    model,
    variant,
    bundle_dir,
    threads,
    masks_dir,
    prompt,
    seed,
    margin,
):
    """Segment every photo of SOURCE and score it against its expert mask: masks/<id>.png per
    photo, as `skinscreen evaluate --out` writes them; Dice/Jaccard per photo in results.parquet,
    the means in summary.json."""
    job = _job(
        "evaluate",
        out_dir,
        model,
        variant,
        bundle_dir,
        threads,
        masks_dir=str(masks_dir.resolve()) if masks_dir else None,
        prompt=prompt,
        seed=seed,
        margin=margin,
    )
    _go(job, source, out_dir, ray_address, workers, cpus_per_worker, resume, path_column, as_json)
