"""``skinscreen compare``: the same lesion in two photos (visits); the change and a report."""

from __future__ import annotations

import json
from pathlib import Path

import click

from skinscreen.cli.common import box_callback, box_margin_option, make_predictor, model_options


@click.command(
    "compare",
    epilog=(
        "Examples:\n\n"
        "  skinscreen compare march.jpg june.jpg --box 120,80,560,470 --out change/\n\n"
        "  skinscreen compare march.jpg june.jpg --auto-scale --json\n\n"
        "--box is in the EARLIER photo's pixels; it is carried into the later photo through the "
        "alignment. --out gets change.json (schema: docs/compare.schema.json), change.html and "
        "the pictures change_aligned.png, change_contours.png, change_growth.png. Without --out "
        "nothing is written. Photos that do not show the same lesion: exit 1, nothing written. "
        "Details: docs/compare.md."
    ),
)
@click.argument("earlier", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("later", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--box",
    callback=box_callback,
    metavar="X0,Y0,X1,Y1",
    help="Box around the lesion in the EARLIER photo (default: automatic mode in both).",
)
@box_margin_option
@click.option("--mm-per-pixel", type=float, default=None, help="Scale of both photos (mm/px).")
@click.option(
    "--dermoscope",
    default=None,
    metavar="PRESET",
    help="Scale of both photos from a field-of-view preset: fov10, fov15, fov20, fov25.",
)
@click.option(
    "--auto-scale",
    is_flag=True,
    help="Read each photo's scale from a millimetre ruler in it; no scale when none is found.",
)
@click.option(
    "--ruler-tick-mm",
    type=click.FloatRange(min=0.0, min_open=True),
    default=1.0,
    show_default=True,
    help="With --auto-scale: spacing of the ruler's longest regular ticks, in mm.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write change.json, change.html and the pictures here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON change report on stdout.")
@model_options
def command(
    earlier,
    later,
    box,
    box_margin,
    mm_per_pixel,
    dermoscope,
    auto_scale,
    ruler_tick_mm,
    out_dir,
    as_json,
    model,
    variant,
    bundle_dir,
    threads,
):
    """Compare the same lesion in an EARLIER and a LATER photo: align them, outline the lesion in
    both and report the change in size (mm with a scale), shape and colour against the
    measurement noise floor.

    A screening aid, never a diagnosis.
    """
    from skinscreen.assess.scale import Scale, resolve_scale
    from skinscreen.compare.change import compare_photos
    from skinscreen.compare.html import change_pictures, render_change_html
    from skinscreen.disclaimer import DISCLAIMER
    from skinscreen.io.image import load_image
    from skinscreen.io.write import png_bytes, write_files_atomic

    if sum(x is not None for x in (mm_per_pixel, dermoscope)) + int(auto_scale) > 1:
        raise click.UsageError("give one of --mm-per-pixel, --dermoscope, --auto-scale")
    img_e, img_l = load_image(earlier), load_image(later)
    detail: dict[str, dict] = {}
    if auto_scale:
        from skinscreen.compare.ruler import find_ruler_scale

        scales = []
        for key, img in (("earlier", img_e), ("later", img_l)):
            found = find_ruler_scale(img, tick_mm=ruler_tick_mm)
            if found is None:
                scales.append(Scale())
                click.echo(f"no readable ruler in the {key} photo: no scale for it", err=True)
            else:
                scales.append(Scale(found.mm_per_pixel, "ruler"))
                detail[key] = found.to_dict()
        s_e, s_l = scales
    else:
        s_e = resolve_scale(mm_per_pixel, dermoscope, img_e.shape[:2])
        s_l = resolve_scale(mm_per_pixel, dermoscope, img_l.shape[:2])
    predictor = make_predictor(model, variant, bundle_dir, threads)
    c = compare_photos(
        img_e,
        img_l,
        predictor,
        box=box,
        box_margin=box_margin,
        scale_earlier=s_e,
        scale_later=s_l,
        scale_detail=detail,
        names=(earlier.name, later.name),
    )
    r = c.report
    if out_dir is not None:
        pics = change_pictures(c)
        files = {
            out_dir / "change.json": r.model_dump_json(indent=2).encode(),
            out_dir / "change.html": render_change_html(r, pics).encode("utf-8"),
        }
        for name, (pic, _) in pics.items():
            files[out_dir / f"change_{name}.png"] = png_bytes(pic)
        write_files_atomic(files)
    if as_json:
        click.echo(json.dumps(r.model_dump(mode="json"), indent=2))
    else:
        ch = r.change
        click.echo(f"{earlier.name} -> {later.name}: {r.verdict}")
        click.echo(
            f"  area {ch.area_rel:+.1%}, max diameter {ch.diameter_max_rel:+.1%} (noise floor "
            f"\u00b1{r.noise_floor.area_rel:.0%} / \u00b1{r.noise_floor.diameter_max_rel:.0%})"
            + (
                f"; {ch.area_mm2_delta:+.2f} mm2, {ch.diameter_max_mm_delta:+.2f} mm"
                if ch.area_mm2_delta is not None
                else ""
            )
        )
        click.echo(
            f"  aligned by {r.registration.method}: {r.registration.inliers} matches, "
            f"error {r.registration.reprojection_error_px:.2f} px"
        )
        for w in r.warnings:
            click.echo(f"  warning: {w}")
    if out_dir is not None and not as_json:
        click.echo(f"wrote the change report to {out_dir}/", err=True)
    click.echo(DISCLAIMER, err=True)
