"""``--format``, ``--identifiers`` and ``--body-site``: the exchange-format options of segment
and assess (writers in :mod:`skinscreen.report.formats`; reference: docs/formats.md)."""

from __future__ import annotations

from collections.abc import Callable

import click


def format_option(allowed: tuple[str, ...]) -> Callable[[Callable], Callable]:
    """``--format png,dicom-seg,...`` parsed into a tuple of names (default ``("png",)``)."""

    def parse(ctx: click.Context, param: click.Parameter, value: str | None):
        from skinscreen.errors import SkinscreenError
        from skinscreen.report.formats import parse_formats

        try:
            return parse_formats(value, allowed)
        except SkinscreenError as e:
            raise click.BadParameter(str(e)) from None

    return click.option(
        "--format",
        "formats",
        default=None,
        callback=parse,
        metavar="LIST",
        help=f"Mask/outline files to write with --out, a comma list of {', '.join(allowed)} "
        "(default png). dicom-seg: a DICOM SEG referencing the input (a JPEG/PNG input is first "
        "wrapped as <stem>_source.dcm, a Secondary Capture); dicom-seg-fractional: the "
        "probability map as a fractional SEG; coco: COCO RLE; geojson: pixel-edge polygon"
        + ("; fhir: a FHIR R4 Observation of the measurements" if "fhir" in allowed else "")
        + ". See docs/formats.md.",
    )


def identifiers_option(f: Callable) -> Callable:
    """``--identifiers``: carry a DICOM input's patient/study identifiers into the outputs."""
    return click.option(
        "--identifiers",
        is_flag=True,
        help="Carry a DICOM input's patient and study identifiers (patient ID and name, study, "
        "series and SOP instance UIDs, accession number) into the outputs (JSON, FHIR). Off by "
        "default; never logged. A DICOM SEG always joins its source's study, as DICOM requires.",
    )(f)
