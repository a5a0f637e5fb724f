"""Options and helpers shared by CLI verbs (box parsing, model options, batch runs)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import click

from skinscreen.errors import SkinscreenError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".dcm"}


def parse_box(value: str | None) -> list[float] | None:
    """``"X0,Y0,X1,Y1"`` -> four floats (validated against the photo later)."""
    if value is None:
        return None
    parts = [p.strip() for p in value.replace(" ", ",").split(",") if p.strip()]
    try:
        box = [float(p) for p in parts]
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected four numbers X0,Y0,X1,Y1") from None
    if len(box) != 4:
        raise click.BadParameter(f"{value!r}: expected four numbers X0,Y0,X1,Y1")
    return box


def box_callback(ctx: click.Context, param: click.Parameter, value: str | None):
    return parse_box(value)


def box_margin_option(f: Callable) -> Callable:
    """``--box-margin`` (None: the model spec's ``box_margin``)."""
    return click.option(
        "--box-margin",
        "box_margin",
        type=click.FloatRange(0.0, 1.0),
        default=None,
        metavar="FRACTION",
        help="Grow --box by this fraction of its width/height on every side (clipped to the "
        "photo) before segmenting; people draw boxes loose, shifted or tight and the margin "
        "absorbs it. Default: the model's box_margin (0.05 for litemedsam); 0 uses the box as "
        "drawn. Automatic boxes are never grown.",
    )(f)


ENGINE_CHOICES = ("auto", "onnxruntime", "openvino")  # skinscreen.engine.select.ENGINES
_ENGINE_META = "skinscreen.engine"
_BOX_CHECK_META = "skinscreen.box_check"
_TTA_META = "skinscreen.tta"
_COMMERCIAL_META = "skinscreen.commercial_only"


def _meta_option(decl: str, meta_key: str, **kwargs) -> Callable[[Callable], Callable]:
    """A click option kept in ``ctx.meta[meta_key]`` (when given) instead of being a parameter
    of the verb, so shared helpers (:func:`make_predictor`) read it without plumbing."""

    def remember(ctx: click.Context, param: click.Parameter, value):
        if value is not None:
            ctx.meta[meta_key] = value
        return value

    return click.option(decl, default=None, expose_value=False, callback=remember, **kwargs)


def _selected(meta_key: str):
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(meta_key) if ctx is not None else None


def engine_option(f: Callable) -> Callable:
    """``--engine auto|onnxruntime|openvino``, kept in ``ctx.meta`` (not a parameter of the verb):
    :func:`make_predictor` and :func:`selected_engine` read it."""
    return _meta_option(
        "--engine",
        _ENGINE_META,
        type=click.Choice(ENGINE_CHOICES),
        help="Inference engine. auto (default, or $SKINSCREEN_ENGINE): OpenVINO bf16 when the "
        "'fast' extra is installed, the CPU has bf16 and the bundle's openvino-bf16 variant "
        "passed the accuracy gate; else ONNX Runtime.",
    )(f)


def box_check_option(f: Callable) -> Callable:
    """``--box-check/--no-box-check`` (kept in ``ctx.meta``; :func:`make_predictor` reads it)."""
    return _meta_option(
        "--box-check/--no-box-check",
        _BOX_CHECK_META,
        help="Run the model's box-robust second decoder on drawn boxes and use its outline when "
        "the two disagree (a loose or shifted box; reported as box_check in JSON). Default: on "
        "for litemedsam when the litemedsam-boxaug bundle is built (make bundle builds it).",
    )(f)


def tta_option(f: Callable) -> Callable:
    """``--tta`` (test-time flips; kept in ``ctx.meta``; :func:`make_predictor` reads it)."""
    return _meta_option(
        "--tta",
        _TTA_META,
        is_flag=True,
        help="Test-time flips: average the outline over the photo and its three mirror images "
        "(4 encoder runs per photo, about 4x slower). Mirroring the photo then no longer changes "
        "the outline; Dice with the expert's box on the dev photos 0.912 -> 0.918.",
    )(f)


def commercial_only_option(f: Callable) -> Callable:
    """``--commercial-only`` (kept in ``ctx.meta``; :func:`make_predictor` reads it)."""
    from skinscreen.licences import COMMERCIAL_ONLY_EFFECT

    return _meta_option(
        "--commercial-only",
        _COMMERCIAL_META,
        is_flag=True,
        help=f"Run {COMMERCIAL_ONLY_EFFECT}. Models learned from non-commercial photos are "
        "refused. Default: $SKINSCREEN_COMMERCIAL_ONLY (off).",
    )(f)


def selected_commercial_only() -> bool | None:
    """``--commercial-only`` of the running command (None: not given: the environment's)."""
    return _selected(_COMMERCIAL_META) or None


def selected_box_check() -> bool | None:
    """The ``--box-check/--no-box-check`` value of the running command (None: not given)."""
    return _selected(_BOX_CHECK_META)


def selected_engine() -> str | None:
    """The ``--engine`` value of the running command (None: not given)."""
    return _selected(_ENGINE_META)


def model_options(f: Callable) -> Callable:
    """``--model``, ``--variant``, ``--bundle``, ``--threads``, ``--engine``,
    ``--box-check/--no-box-check`` and ``--commercial-only``."""
    f = commercial_only_option(f)
    f = box_check_option(f)
    f = engine_option(f)
    f = click.option(
        "--threads", type=int, default=None, help="Engine threads (default: all CPUs)."
    )(f)
    f = click.option(
        "--bundle",
        "bundle_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Model bundle directory (default: the cache; see `skinscreen models`).",
    )(f)
    f = click.option(
        "--variant", default=None, help="Bundle variant, e.g. onnx-fp32 (default: the bundle's)."
    )(f)
    f = click.option("--model", default="litemedsam", show_default=True, help="Model name.")(f)
    return f


def make_predictor(
    model: str,
    variant: str | None,
    bundle_dir: Path | None,
    threads: int | None,
    engine: str | None = None,
    box_check_default: bool | None = None,
):
    """A :class:`~skinscreen.predictor.LesionPredictor`; ``engine`` None: the ``--engine`` value;
    ``box_check``: the ``--box-check/--no-box-check`` value, else ``box_check_default`` (None:
    the predictor's own default)."""
    from skinscreen.predictor import LesionPredictor

    box_check = selected_box_check()
    return LesionPredictor(
        model,
        variant=variant,
        bundle_dir=bundle_dir,
        threads=threads,
        engine=engine or selected_engine(),
        box_check=box_check_default if box_check is None else box_check,
        tta=bool(_selected(_TTA_META)),
        commercial_only=selected_commercial_only(),
    )


def build_missing_bundle(model: str, root: Path) -> None:
    """Build a missing default bundle with the lab's exporter (needs the ``export`` extra); the
    CLI installs this as the runtime's bundle builder (:func:`skinscreen.engine.bundle.
    set_bundle_builder`), so a first ``segment`` builds the bundle it needs."""
    from skinscreen.export import build_default_bundle  # torch lives only on this path

    build_default_bundle(model, root)


def expand_inputs(items: Iterable[str]) -> list[Path]:
    """Files as given; directories expand to the image files directly inside them (sorted)."""
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise SkinscreenError(
                    f"{p}: directory holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})"
                )
            out.extend(found)
        else:
            out.append(p)
    return out


def progress(items: list, desc: str):
    """tqdm progress bar on stderr for batches of more than one item."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", file=sys.stderr, disable=len(items) <= 1, leave=False)


def report_failures(failures: list[tuple[str, str]]) -> None:
    """Print each failed item and exit 1 when there are any."""
    if not failures:
        return
    for name, msg in failures:
        # messages about a file usually name it already: print the path once
        click.echo(f"error: {msg}" if name in msg else f"error: {name}: {msg}", err=True)
    names = ", ".join(n for n, _ in failures)
    click.echo(f"{len(failures)} item(s) failed: {names}", err=True)
    sys.exit(1)
