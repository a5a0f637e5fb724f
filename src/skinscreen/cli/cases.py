"""``skinscreen cases``: the opt-in local case history (lesions, visits, reports)."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import click

from skinscreen.cli.common import box_callback, box_margin_option, make_predictor, model_options


@click.group(
    "cases",
    epilog=(
        "Examples:\n\n"
        "  skinscreen cases --db ~/skin/cases.db add left-forearm-1 photo.jpg "
        "--box 120,80,560,470 --mm-per-pixel 0.02 --body-site 'left forearm'\n\n"
        "  skinscreen cases --db ~/skin/cases.db list\n\n"
        "  skinscreen cases --db ~/skin/cases.db show left-forearm-1 --json\n\n"
        "  skinscreen cases --db ~/skin/cases.db export cases.csv\n\n"
        "  skinscreen cases --db ~/skin/cases.db delete left-forearm-1\n\n"
        "The history is off unless you name its file (--db or $SKINSCREEN_CASES). It keeps each "
        "visit's photo and report in that one file, nowhere else; delete removes a lesion and "
        "overwrites its bytes."
    ),
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The case-history file (SQLite). Default: $SKINSCREEN_CASES; without either the "
    "history is off.",
)
@click.pass_context
def command(ctx: click.Context, db: Path | None) -> None:
    """Keep lesions and their visits over time, on this computer only (opt-in).

    A screening aid, never a diagnosis.
    """
    ctx.obj = {"db": db}


def _store(ctx: click.Context, create: bool = False):
    from skinscreen.cases import open_store

    return open_store(ctx.obj["db"], create=create)


@command.command("add")
@click.argument("lesion_id")
@click.argument("photo", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--box", callback=box_callback, metavar="X0,Y0,X1,Y1", help="Box around the lesion.")
@box_margin_option
@click.option("--mm-per-pixel", type=float, default=None, help="Scale: mm of skin per pixel.")
@click.option("--dermoscope", default=None, metavar="PRESET", help="Scale preset: fov10..fov25.")
@click.option("--body-site", default=None, help="Where the lesion is, e.g. 'left forearm'.")
@click.option("--date", "taken", default=None, help="When the photo was taken (YYYY-MM-DD).")
@click.option("--notes", default=None, help="Free-text notes for this visit.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored visit as JSON.")
@model_options
@click.pass_context
def add(
    ctx, lesion_id, photo, box, box_margin, mm_per_pixel, dermoscope, body_site, taken, notes,
    as_json, model, variant, bundle_dir, threads,
):  # fmt: skip
    """Assess PHOTO and store it as a visit of LESION_ID (created on its first visit)."""
    from skinscreen.cases.store import check_date, check_lesion_id
    from skinscreen.disclaimer import DISCLAIMER
    from skinscreen.report.build import segment_and_assess

    check_lesion_id(lesion_id)  # before anything is created or computed
    check_date(taken)
    predictor = make_predictor(model, variant, bundle_dir, threads)
    a = segment_and_assess(
        predictor, photo, box=box, box_margin=box_margin, mm_per_pixel=mm_per_pixel,
        dermoscope=dermoscope,
    )  # fmt: skip
    store = _store(ctx, create=True)
    visit = store.add_visit(
        lesion_id,
        photo.read_bytes(),
        photo.name,
        a.report.model_dump(mode="json"),
        taken=taken,
        body_site=body_site,
        notes=notes,
    )
    if as_json:
        click.echo(json.dumps(visit.to_json_dict(), indent=2))
    else:
        click.echo(f"visit {visit.id} of {visit.lesion_id} ({visit.taken}) stored in {store.path}")
    click.echo(DISCLAIMER, err=True)


def _size(report: dict) -> str:
    if report.get("diameter_max_mm") is not None:
        return f"{report['diameter_max_mm']:.1f} mm"
    return f"{report.get('diameter_max_px', 0):.0f} px"


@command.command("list")
@click.option("--search", default=None, help="Only lesions whose id, body site or notes match.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_(ctx, search, as_json):
    """List the lesions with their number of visits and the last visit's date."""
    lesions = _store(ctx).lesions(search)
    if as_json:
        click.echo(json.dumps([les.to_json_dict() for les in lesions], indent=2))
        return
    for les in lesions:
        click.echo(
            f"{les.id}  {les.body_site or '-'}  {les.n_visits} visit(s), last {les.last_visit}"
        )


@command.command("show")
@click.argument("lesion_id")
@click.option("--json", "as_json", is_flag=True, help="Print the visits and reports as JSON.")
@click.pass_context
def show(ctx, lesion_id, as_json):
    """Show the visits of one lesion, oldest first."""
    visits = _store(ctx).visits(lesion_id)
    if as_json:
        click.echo(json.dumps([v.to_json_dict() for v in visits], indent=2))
        return
    for v in visits:
        click.echo(
            f"visit {v.id}  {v.taken}  {v.photo_name}  max diameter {_size(v.report)}, "
            f"colours {v.report['colors']['count']}" + (f"  notes: {v.notes}" if v.notes else "")
        )


@command.command("export")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.pass_context
def export(ctx, out):
    """Write every visit's headline features as CSV to OUT (stdout without OUT)."""
    from skinscreen.io.write import write_files_atomic

    rows = _store(ctx).rows()
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    if out is None:
        sys.stdout.write(buf.getvalue())
    else:
        write_files_atomic({out: buf.getvalue().encode()})
        click.echo(f"wrote {len(rows)} visit(s) to {out}", err=True)


@command.command("delete")
@click.argument("lesion_id")
@click.option("--visit", "visit_id", type=int, default=None, help="Delete only this visit.")
@click.pass_context
def delete(ctx, lesion_id, visit_id):
    """Delete a lesion and all its visits (or one --visit): photos and reports are removed
    from the file, not only hidden."""
    store = _store(ctx)
    if visit_id is not None:
        if visit_id not in {v.id for v in store.visits(lesion_id)}:
            raise click.UsageError(f"visit {visit_id} is not a visit of {lesion_id}")
        store.delete_visit(visit_id)
        click.echo(f"deleted visit {visit_id} of {lesion_id}")
        return
    n = store.delete_lesion(lesion_id)
    click.echo(f"deleted {lesion_id} and its {n} visit(s)")
