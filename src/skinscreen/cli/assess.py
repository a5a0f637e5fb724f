"""``skinscreen assess``: segment and measure lesions; JSON, HTML report, overlays and a CSV table."""

from __future__ import annotations

import csv
import io
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


def _mask_for(mask_arg: Path, image_path: Path, many: bool) -> Path:
    """The mask file for ``image_path``: ``mask_arg`` itself, or ``mask_arg/<stem>.png``."""
    if mask_arg.is_dir():
        for suffix in (".png", ".PNG"):
            cand = mask_arg / f"{image_path.stem}{suffix}"
            if cand.exists():
                return cand
        from skinscreen.errors import ImageError

        raise ImageError(f"no mask {mask_arg / (image_path.stem + '.png')} for {image_path.name}")
    if many:
        raise click.UsageError("with several photos, --mask must be a folder of <stem>.png masks")
    return mask_arg


def _summary(report) -> str:
    r = report
    size = (
        f"max diameter {r.diameter_max_mm:.1f} mm, area {r.area_mm2:.1f} mm2"
        if r.diameter_max_mm is not None
        else f"max diameter {r.diameter_max_px:.0f} px, area {r.area_px} px (no scale)"
    )
    colors = ", ".join(c.replace("_", " ") for c in r.colors.present) or "none"
    tone = "n/a" if r.ita_deg is None else f"ITA {r.ita_deg:.0f} deg ({r.skin_tone})"
    lines = [
        f"{r.image.name}: {size}",
        f"  asymmetric axes {r.asymmetry.asymmetric_axes}/2 (shape), "
        f"{r.asymmetry.color_asymmetric_axes}/2 (colour); abrupt border segments "
        f"{r.border.abrupt_octants}/8; compactness {r.border.compactness:.2f}",
        f"  colours ({r.colors.count}): {colors}; skin tone {tone}",
    ]
    lines += [f"  warning: {w}" for w in r.warnings]
    return "\n".join(lines)


def write_assessment(
    a,
    path: Path,
    out_dir: Path,
    *,
    formats: tuple[str, ...] = ("png",),
    body_site: str | None = None,
    identifiers: bool = False,
) -> list[Path]:
    """Write one photo's assessment ``a`` (:class:`~skinscreen.report.build.Assessment`) to
    ``out_dir`` all-or-nothing: ``<stem>.json``, ``<stem>.html``, the pictures and the outline in
    each of ``formats``; returns the paths written (``skinscreen batch assess`` writes through this
    too)."""
    from skinscreen.io.dicom import dicom_identifiers
    from skinscreen.io.write import png_bytes, write_files_atomic
    from skinscreen.report.formats import Outline, output_files
    from skinscreen.report.html import render_html, report_pictures

    report = a.report
    pics = report_pictures(a)
    stem = path.stem
    files = {
        out_dir / f"{stem}.json": report.model_dump_json(indent=2).encode(),
        out_dir / f"{stem}.html": render_html(report, pics).encode("utf-8"),
    }
    if "png" in formats:
        files[out_dir / f"{stem}_mask.png"] = png_bytes(a.props.mask)
    for name, (pic, _) in pics.items():
        files[out_dir / f"{stem}_{name}.png"] = png_bytes(pic)
    seg = report.segmentation
    outline = Outline(
        photo=a.photo,
        mask=a.props.mask,
        source_path=path,
        probability=a.probability,
        model=seg.model,
        variant=seg.variant,
        score=seg.iou_prediction,
        mm_per_pixel=report.scale.mm_per_pixel,
    )
    files.update(
        output_files(
            formats,
            out_dir,
            stem,
            outline,
            report=report.model_dump(mode="json"),
            body_site=body_site,
            identifiers=dicom_identifiers(path) if identifiers else None,
        )
    )
    write_files_atomic(files)
    return list(files)


@click.command(
    "assess",
    epilog=(
        "Examples:\n\n"
        "  skinscreen assess photo.jpg --box 120,80,560,470 --mm-per-pixel 0.02 --out report/\n\n"
        "  skinscreen assess photos/ --dermoscope fov20 --out reports/   # + reports/features.csv\n\n"
        "  skinscreen assess photo.jpg --mask photo_mask.png --json       # measure your own mask\n\n"
        "Per photo, --out gets <stem>.json (schema: docs/report.schema.json), <stem>.html "
        "(self-contained report), <stem>_mask.png and the pictures <stem>_overlay.png, "
        "<stem>_axes.png, <stem>_heatmap.png, <stem>_colors.png. Without --out nothing is "
        "written. Definitions of every measurement: docs/features.md."
    ),
)
@click.argument("images", nargs=-1, required=True)
@click.option(
    "--box",
    callback=box_callback,
    metavar="X0,Y0,X1,Y1",
    help="Box around the lesion in photo pixels (EXIF-upright), XYXY. One photo only.",
)
@box_margin_option
@click.option(
    "--auto",
    is_flag=True,
    help="Find the lesion automatically, and answer 'no reliable outline, please draw a box' "
    "where the outline-quality estimate flags a likely failure (without --box and --auto the "
    "automatic outline is always given, flagged in outline_quality).",
)
@click.option(
    "--mask",
    "mask_arg",
    type=click.Path(exists=True, path_type=Path),
    help="Measure this mask (0/255 PNG, or a folder of <stem>.png) instead of segmenting.",
)
@click.option(
    "--mm-per-pixel",
    type=float,
    default=None,
    help="Scale: millimetres of skin per photo pixel (measure a ruler in the photo).",
)
@click.option(
    "--dermoscope",
    default=None,
    metavar="PRESET",
    help="Scale from a field-of-view preset: fov10, fov15, fov20, fov25 (the photo's longer side "
    "spans that many mm).",
)
@click.option(
    "--color-constancy",
    is_flag=True,
    help="Correct the light's colour (Shades of Gray) before measuring colours.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the JSON, HTML report, mask and pictures here (and features.csv for a batch).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report(s) on stdout.")
@format_option(("png", "dicom-seg", "dicom-seg-fractional", "coco", "geojson", "fhir"))
@click.option(
    "--body-site",
    default=None,
    metavar="SITE",
    help="Where the lesion is, for the FHIR Observation's bodySite: free text ('left forearm') "
    "or a SNOMED CT body structure as SCT:<code>[:<text>].",
)
@identifiers_option
@model_options
@tta_option
def command(
    images,
    box,
    box_margin,
    auto,
    mask_arg,
    mm_per_pixel,
    dermoscope,
    color_constancy,
    out_dir,
    as_json,
    formats,
    body_site,
    identifiers,
    model,
    variant,
    bundle_dir,
    threads,
):
    """Segment the lesion in each IMAGE (file or folder) and measure it: size (mm with a scale),
    asymmetry, border, colours, skin tone (ITA) and photo quality, with a heatmap and a report.

    A screening aid, never a diagnosis.
    """
    from skinscreen.assess.quality import jpeg_quality_estimate
    from skinscreen.assess.scale import DERMOSCOPE_PRESETS, resolve_scale
    from skinscreen.disclaimer import DISCLAIMER
    from skinscreen.errors import SkinscreenError
    from skinscreen.io.dicom import dicom_mm_per_pixel
    from skinscreen.io.image import load_image, load_mask
    from skinscreen.io.write import write_files_atomic
    from skinscreen.report.build import assess_image, flat_row, segment_and_assess

    if box is not None and auto:
        raise click.UsageError("give either --box or --auto, not both")
    if mask_arg is not None and (box is not None or auto):
        raise click.UsageError(
            "--mask measures a given outline: it cannot be used with --box/--auto"
        )
    if mm_per_pixel is not None and dermoscope is not None:
        raise click.UsageError("give either --mm-per-pixel or --dermoscope, not both")
    if dermoscope is not None and dermoscope not in DERMOSCOPE_PRESETS:
        raise click.BadParameter(
            f"unknown preset '{dermoscope}': choose one of {', '.join(DERMOSCOPE_PRESETS)}",
            param_hint="--dermoscope",
        )
    if mm_per_pixel is not None and not mm_per_pixel > 0:
        raise click.BadParameter(
            "must be a positive number of mm per pixel", param_hint="--mm-per-pixel"
        )
    paths = expand_inputs(images)
    many = len(paths) > 1 or any(Path(i).is_dir() for i in images)
    if box is not None and many:
        raise click.UsageError("--box applies to one photo; give a single IMAGE")

    predictor = None
    if mask_arg is None:
        predictor = make_predictor(model, variant, bundle_dir, threads)

    reports, rows, failures = [], [], []
    for path in progress(paths, "assess"):
        try:
            if predictor is not None:
                a = segment_and_assess(
                    predictor,
                    path,
                    box=box,
                    box_margin=box_margin,
                    mm_per_pixel=mm_per_pixel,
                    dermoscope=dermoscope,
                    color_constancy=color_constancy,
                    abstain=auto,  # --auto: "no reliable outline" rather than a likely failure
                )
            else:
                photo = load_image(path)
                mask = load_mask(_mask_for(mask_arg, path, many))
                if mask.shape != photo.shape[:2]:
                    raise SkinscreenError(
                        f"mask is {mask.shape[1]}x{mask.shape[0]} but the photo is "
                        f"{photo.shape[1]}x{photo.shape[0]}: give a mask of the photo's size"
                    )
                if not mask.any():
                    raise SkinscreenError("the mask is empty: it outlines no lesion")
                a = assess_image(
                    photo,
                    mask,
                    scale=resolve_scale(
                        mm_per_pixel,
                        dermoscope,
                        photo.shape[:2],
                        file_mm_per_pixel=dicom_mm_per_pixel(path),
                    ),
                    color_constancy=color_constancy,
                    image_name=path.name,
                    jpeg_quality=jpeg_quality_estimate(path),
                )
            report = a.report
            if out_dir is not None:
                write_assessment(
                    a,
                    path,
                    out_dir,
                    formats=formats,
                    body_site=body_site,
                    identifiers=identifiers,
                )
            reports.append(report)
            rows.append(flat_row(report))
            if not as_json and not many:
                click.echo(_summary(report))
        except SkinscreenError as e:
            failures.append((str(path), str(e)))

    table = None
    if many and rows:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        table = buf.getvalue()
        if out_dir is not None:
            write_files_atomic({out_dir / "features.csv": table.encode()})
    if as_json:
        payload = [r.model_dump(mode="json") for r in reports]
        if many or payload:
            click.echo(json.dumps(payload if many else payload[0], indent=2))
    elif many and out_dir is None and table is not None:
        click.echo(table, nl=False)
    elif many:
        for r in reports:
            click.echo(_summary(r))
    if out_dir is not None and reports and not as_json:
        click.echo(
            f"wrote {len(reports)} report(s) to {out_dir}/"
            + (" and features.csv" if table is not None else ""),
            err=True,
        )
    if reports:
        click.echo(DISCLAIMER, err=True)
    report_failures(failures)
