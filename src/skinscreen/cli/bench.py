"""``skinscreen bench``: time every pipeline on the same photos in one run."""

from __future__ import annotations

import json
from pathlib import Path

import click

from skinscreen.cli.common import box_check_option, selected_box_check


@click.command("bench")
@box_check_option
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of photos (expert masks in ../masks for boxes). Default: the sample photos.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON on stdout.")
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=8,
    show_default=True,
    help="At most this many photos (evenly spaced).",
)
@click.option("--model", default="litemedsam", show_default=True, help="Registered model name.")
@click.option(
    "--bundle",
    "bundle_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Bundle directory (default: the model's cached bundle).",
)
@click.option(
    "--variants",
    default=None,
    help="Comma-separated variants to time (default: every onnx-*/ort-* variant, and "
    "openvino-bf16 where OpenVINO and a bf16 CPU are present).",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Intra-op threads for every engine.",
)
@click.option(
    "--no-pytorch", is_flag=True, help="Skip the PyTorch reference even when torch is installed."
)
@click.option("--no-cold-start", is_flag=True, help="Skip cold-start / peak-RSS child processes.")
@click.option(
    "--levers",
    is_flag=True,
    help="Also measure ORT threads / optimisation level / spinning / session creation.",
)
@click.option(
    "--markdown", is_flag=True, help="Print the results table as Markdown (for BENCHMARKS.md)."
)
def command(
    images,
    as_json,
    limit,
    model,
    bundle_dir,
    variants,
    threads,
    no_pytorch,
    no_cold_start,
    levers,
    markdown,
):
    """Benchmark the PyTorch reference, ONNX Runtime fp32 and every exported variant.

    One run, the same photos and boxes, pipelines interleaved photo by photo: stage times
    (load, preprocess, encoder, decoder prelude, decoder, box check, postprocess), whole file ->
    mask (with the box check where the predictor runs one, as by default),
    re-prompt (post-processing plus the prompt decoder on the cached prelude, or the decoder on
    the cached embedding for bundles without the re-prompt pair), cold start (new process to first mask) and its peak
    RSS, bundle size, mask Dice vs the fp32 PyTorch masks, speedup_vs_pytorch of the default
    pipeline (what engine=auto picks here: openvino-bf16 when gated and runnable, else the
    manifest's default variant; ratio of medians), and the encoder's achieved GFLOP/s next to a matrix-multiply peak
    measured in the same run. Medians in ms unless stated.

    \b
    Examples:
      skinscreen bench
      skinscreen bench --images dev/images --limit 12 --json
    """
    from skinscreen.bench.runner import markdown_table, run_bench

    result = run_bench(
        images,
        bundle_dir=bundle_dir,
        model=model,
        limit=limit,
        threads=threads,
        variants=[v.strip() for v in variants.split(",") if v.strip()] if variants else None,
        pytorch=False if no_pytorch else None,
        cold_start=not no_cold_start,
        levers=levers,
        say=lambda m: click.echo(m, err=True),
        box_check=selected_box_check(),
    )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    from skinscreen.engine.cpu import cpu_line

    m = result["machine"]
    if not markdown:  # markdown_table starts with the same line
        click.echo(cpu_line(result["cpu"]))
    click.echo(
        f"{m.get('cpu', '?')}, {m.get('cpus_available')} CPUs, {threads} threads, "
        f"{result['images']['n']} photos from {result['images']['dir']}"
    )
    click.echo(markdown_table(result) if markdown else _plain(result))
    de = result["default_engine"]
    click.echo(f"default pipeline: {result['default_variant']} ({de['engine']}; {de['reason']})")
    if "speedup_vs_pytorch" in result:
        click.echo(
            f"speedup_vs_pytorch ({result['default_variant']}): {result['speedup_vs_pytorch']}x"
        )
    peaks = result["matmul_peak_gflops"]
    click.echo(
        f"encoder {result.get('encoder_gflop')} GFLOP; matmul peak fp32: numpy {peaks['numpy_fp32_1024']} "
        f"GFLOP/s, onnxruntime {peaks['onnxruntime_fp32_1024']} GFLOP/s"
    )
    for name, t in result.get("targets", {}).items():
        click.echo(
            f"target {name}: {t['value']} ({t['target']}) {'met' if t['met'] else 'NOT met'}"
        )


def _plain(r: dict) -> str:
    lines = [
        f"{'pipeline':14s} {'MB':>6s} {'enc ms':>8s} {'dec ms':>7s} {'file->mask':>10s} {'reprompt':>8s} {'cold s':>6s} {'RSS MB':>6s} {'Dice/fp32':>9s}"
    ]
    for n, p in r["pipelines"].items():
        lines.append(
            f"{n:14s} {p.get('size_mb') or '':>6} {p['encoder']['median']:8.0f} {p['decoder']['median']:7.1f} "
            f"{p['file_to_mask']['median']:10.0f} {p['reprompt']['median']:8.1f} {p.get('cold_start_s', ''):>6} "
            f"{p.get('peak_rss_mb', ''):>6} {p['mask_dice_vs_fp32']['mean']:9.4f}"
        )
    return "\n".join(lines)
