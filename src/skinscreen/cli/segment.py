"""``skinscreen segment``: photos in, lesion masks, overlays and JSON out."""

from __future__ import annotations

import json
from pathlib import Path

import click

from skinscreen.cli.common import (
    box_callback,
    box_margin_option,
    expand_inputs,
    make_predictor,
    model_options,
    progress,
    report_failures,
    tta_option,
)
from skinscreen.cli.outputs import format_option, identifiers_option


def segment_photo(
    predictor,
    path: Path,
    *,
    box=None,
    box_margin=None,
    out_dir: Path | None = None,
    formats: tuple[str, ...] = ("png",),
    identifiers: bool = False,
    abstain: bool = False,
):
    """Segment one photo and, with ``out_dir``, write its ``<stem>_overlay.png``,
    ``<stem>.json`` and the outline in each of ``formats`` (``<stem>_mask.png`` for png; see
    :mod:`skinscreen.report.formats`) all-or-nothing. Returns ``(record, seg)``: the JSON record
    and the :class:`~skinscreen.predictor.Segmentation`. The caller resets the predictor's image
    (``skinscreen batch segment`` writes through this too)."""
    from skinscreen.disclaimer import DISCLAIMER
    from skinscreen.io.dicom import dicom_identifiers, dicom_mm_per_pixel
    from skinscreen.io.write import png_bytes, write_files_atomic
    from skinscreen.postprocess.overlay import draw_overlay
    from skinscreen.report.formats import Outline, output_files

    predictor.set_image(path, box=box)  # a bad box is refused before the encoder runs
    seg = predictor.predict(box=box, box_margin=box_margin, abstain=abstain)
    record = {"image": str(path), **seg.to_json_dict(), "disclaimer": DISCLAIMER}
    ids = dicom_identifiers(path) if identifiers else None
    if ids is not None:
        record["dicom"] = ids
    if out_dir is not None:
        stem = path.stem
        overlay = draw_overlay(predictor.image, seg.mask, seg.polygon, box=seg.box)
        files = {
            out_dir / f"{stem}_overlay.png": png_bytes(overlay),
            out_dir / f"{stem}.json": json.dumps(record, indent=2).encode(),
        }
        if "png" in formats:
            files[out_dir / f"{stem}_mask.png"] = png_bytes(seg.mask)
        outline = Outline(
            photo=predictor.image,
            mask=seg.mask,
            source_path=path,
            probability=seg.probability,
            model=seg.model,
            variant=seg.variant,
            score=seg.iou_prediction,
            mm_per_pixel=dicom_mm_per_pixel(path),
        )
        files.update(output_files(formats, out_dir, stem, outline))
        write_files_atomic(files)
    return record, seg


@click.command(
    "segment",
    epilog=(
        "Examples:\n\n"
        "  skinscreen segment photo.jpg --box 120,80,560,470 --out results/\n\n"
        "  skinscreen segment examples/images --out results/ --json\n\n"
        "Without --box the automatic box is used (the JSON says box_source: auto). "
        "Without --out nothing is written: results go to stdout only."
    ),
)
@click.argument("images", nargs=-1, required=True)
@click.option(
    "--box",
    callback=box_callback,
    metavar="X0,Y0,X1,Y1",
    help="Box prompt in photo pixels (EXIF-upright), XYXY.",
)
@box_margin_option
@click.option(
    "--auto",
    "auto",
    is_flag=True,
    help="Find the lesion automatically, and answer 'no reliable outline, please draw a box' "
    "where the outline-quality estimate flags a likely failure. Without --box and without "
    "--auto the automatic outline is always given, flagged (outline_quality.check_outline).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write <stem>_mask.png, <stem>_overlay.png and <stem>.json here (and the --format files).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON list of per-image results on stdout."
)
@format_option(("png", "dicom-seg", "dicom-seg-fractional", "coco", "geojson"))
@identifiers_option
@model_options
@tta_option
def command(
    images,
    box,
    box_margin,
    auto,
    out_dir,
    as_json,
    formats,
    identifiers,
    model,
    variant,
    bundle_dir,
    threads,
):
    """Segment the lesion in each IMAGE (files or folders) with a box prompt or automatically.

    Writes, per image, a 0/255 mask PNG the size of the EXIF-upright photo, an overlay PNG
    (translucent mask + contour) and a JSON file (box as given, box_margin and box_used, polygon,
    svg_path, area_px, model, timings_ms, and box_check for drawn boxes). A screening aid, never
    a diagnosis.
    """
    from skinscreen.disclaimer import DISCLAIMER
    from skinscreen.errors import SkinscreenError

    if box is not None and auto:
        raise click.UsageError("give either --box or --auto, not both")
    paths = expand_inputs(images)
    predictor = make_predictor(model, variant, bundle_dir, threads)
    results, failures = [], []
    for path in progress(paths, "segment"):
        try:
            record, seg = segment_photo(
                predictor,
                path,
                box=box,
                box_margin=box_margin,
                out_dir=out_dir,
                formats=formats,
                identifiers=identifiers,
                abstain=auto,  # --auto: "no reliable outline" rather than a likely failure
            )
            results.append(record)
            if not as_json:
                t = seg.timings_ms
                click.echo(
                    f"{path.name}: area {seg.area_px} px, box {seg.box_source} "
                    f"[{', '.join(f'{v:.0f}' for v in seg.box)}]"
                    + (
                        f" grown {seg.box_margin:.0%} per side"
                        if seg.box_source == "user" and seg.box_margin
                        else ""
                    )
                    + (
                        ", box check: box-robust outline (the decoders disagreed: "
                        f"{seg.box_check['agreement']:.2f})"
                        if seg.box_check and seg.box_check["decoder"] == "box-robust"
                        else ""
                    )
                    + f", encoder {t['encoder']:.0f} ms, "
                    f"decoder {t['decoder']:.0f} ms"
                    + (
                        f", test-time flips: {seg.tta_views} views averaged (+"
                        f"{t['tta_encoder'] + t['tta_decoder']:.0f} ms)"
                        if seg.tta_views > 1
                        else ""
                    )
                )
        except SkinscreenError as e:
            failures.append((str(path), str(e)))
        finally:
            predictor.reset_image()
    if as_json:
        click.echo(json.dumps(results, indent=2))
    elif out_dir is not None and results:
        click.echo(
            f"wrote {len(results)} result(s) to {out_dir}/ (<stem>_mask.png, <stem>_overlay.png, <stem>.json)"
        )
    if results and not as_json:
        click.echo(DISCLAIMER, err=True)
    report_failures(failures)
