"""``skinscreen evaluate``: score predicted masks against expert masks."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import click

from skinscreen.cli.common import (
    make_predictor,
    model_options,
    progress,
    report_failures,
    tta_option,
)
from skinscreen.evaluate.dataset import PROMPTS


@click.command(
    "evaluate",
    epilog=(
        "Example:\n\n"
        "  skinscreen evaluate --images dev/images "
        "--masks dev/masks --prompt gt-box --json\n\n"
        "threshold_jaccard follows the ISIC 2018 rule (J if J >= 0.65 else 0, averaged per image); "
        "failure_rate is the share of images with J < 0.65."
    ),
)
@click.option(
    "--images",
    "images_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder of photos.",
)
@click.option(
    "--masks",
    "masks_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder of expert masks (<id>.png or <id>_segmentation.png).",
)
@click.option(
    "--prompt",
    type=click.Choice(PROMPTS),
    default="gt-box",
    show_default=True,
    help="How each photo is prompted.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for gt-box-jitter.")
@click.option(
    "--margin",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Grow the expert box (after any jitter) by this fraction of its width/height on every "
    "side, as segment/assess grow a user's box (--box-margin, default 0.05 for litemedsam). "
    "0: the raw expert box, so figures stay comparable. With --robustness: every prompt box, "
    "after its jitter or loosening.",
)
@click.option(
    "--limit", type=int, default=None, help="Evaluate only the first N pairs (sorted by id)."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write per_image.csv, summary.json, masks/<id>.png and, with the outline-quality "
    "model, risk_coverage.png and reliability.png here.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the summary as one JSON object on stdout."
)
@click.option(
    "--robustness",
    is_flag=True,
    help="Run the robustness suite (exposure, colour casts, blur, JPEG, rotation/flips, box "
    "jitter; with and without Shades-of-Gray; by skin tone and source); writes "
    "robustness.md, CSVs and PNG plots to --out.",
)
@click.option(
    "--conditions",
    default=None,
    help="With --robustness: comma-separated condition names (default: all; see "
    "skinscreen.evaluate.perturbations).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="With --robustness: spread the photos over this many processes, each with its own "
    "predictor (--threads each; default: the CPUs / N). Same figures as one process.",
)
@model_options
@tta_option
def command(
    images_dir,
    masks_dir,
    prompt,
    seed,
    margin,
    limit,
    out_dir,
    as_json,
    robustness,
    conditions,
    workers,
    model,
    variant,
    bundle_dir,
    threads,
):
    """Segment every photo in --images and compare with the expert mask of the same id.

    Reports n, dice, jaccard, threshold_jaccard, failure_rate and the median latency; with the
    outline-quality model also failure_auroc and check_outline_rate, and for --prompt auto
    coverage (photos answered: automatic mode abstains on likely failures) and
    threshold_jaccard_answered, dice_answered, jaccard_answered over the answered photos.
    """
    from skinscreen.evaluate.dataset import evaluate_pairs, find_pairs, quality_summary
    from skinscreen.io.write import png_bytes, write_files_atomic

    if workers > 1 and not robustness:
        raise click.UsageError("--workers is for --robustness")
    pairs = find_pairs(images_dir, masks_dir)[:limit]
    predictor = make_predictor(model, variant, bundle_dir, threads)
    if robustness:
        from skinscreen.evaluate.robustness import run_cli

        failures = run_cli(
            predictor,
            pairs,
            images_dir=images_dir,
            conditions=conditions,
            prompt=prompt,
            colour_constancy=True,
            seed=seed,
            out_dir=out_dir,
            as_json=as_json,
            progress=lambda items: progress(items, "robustness"),
            margin=margin,
            workers=workers,
            threads=threads,
        )
        report_failures(failures)
        return

    def save_mask(pair, mask):
        write_files_atomic({out_dir / "masks" / f"{pair.id}.png": png_bytes(mask)})

    result = evaluate_pairs(
        predictor,
        pairs,
        prompt,
        seed=seed,
        margin=margin,
        on_mask=save_mask if out_dir is not None else None,
        progress=lambda items: progress(items, f"evaluate {prompt}"),
    )
    summary = result.summary(prompt, predictor.spec.name)
    summary["variant"] = predictor.bundle.variant
    summary["box_margin"] = margin
    if margin:
        summary["margin"] = margin
    summary.update(quality_summary(result.rows, prompt))
    files = {}
    if out_dir is not None and summary["failure_auroc"] is not None:
        files = _quality_plots(result.rows, out_dir, prompt)
    if out_dir is not None and result.rows:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(result.rows[0]))
        writer.writeheader()
        writer.writerows(result.rows)
        write_files_atomic(
            {
                out_dir / "per_image.csv": buf.getvalue().encode(),
                out_dir / "summary.json": json.dumps(summary, indent=2).encode(),
                **files,
            }
        )
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(
            f"{summary['n']} images, prompt {prompt}: Dice {summary['dice']}, Jaccard {summary['jaccard']}, "
            f"threshold-Jaccard {summary['threshold_jaccard']}, failure rate {summary['failure_rate']}, "
            f"median latency {summary['latency_ms_median']} ms"
            + (
                f"; failure AUROC {summary['failure_auroc']}"
                if summary["failure_auroc"] is not None
                else ""
            )
            + (
                f"; answered {summary['coverage']:.0%} of photos: threshold-Jaccard "
                f"{summary['threshold_jaccard_answered']}, Dice {summary['dice_answered']}"
                if summary.get("coverage") is not None
                else ""
            )
        )
    report_failures(result.failures)


def _quality_plots(rows: list[dict], out_dir: Path, prompt: str) -> dict[Path, bytes]:
    """risk_coverage.png and reliability.png of the rows' outline-quality estimates (a photo
    with no outline counts as p_failure 1, Jaccard 0)."""
    import numpy as np

    from skinscreen.evaluate.metrics import ISIC_JACCARD_THRESHOLD
    from skinscreen.evaluate.quality import reliability_png, risk_coverage_png

    p = np.array([1.0 if r["p_failure"] is None else r["p_failure"] for r in rows])
    j = np.array([r["jaccard"] for r in rows])
    scored = np.array([r["p_failure"] is not None for r in rows])
    label = f"{prompt} (n={len(rows)})"
    return {
        out_dir / "risk_coverage.png": risk_coverage_png([(label, p, j)], "risk-coverage"),
        out_dir / "reliability.png": reliability_png(
            [(label, p[scored], j[scored] < ISIC_JACCARD_THRESHOLD)], "failure reliability"
        ),
    }
