"""One photo of a batch: its outputs, its completion record, and the resume check (no Ray here).

Per photo the worker writes the files the single-process verb writes (through that verb's own
code: :func:`skinscreen.cli.segment.segment_photo`, :func:`skinscreen.cli.assess.write_assessment`,
:func:`skinscreen.evaluate.dataset.evaluate_pairs`), each set all-or-nothing, and then, last,
a completion record ``OUT/.batch/rows/<id>.json`` (atomic: temp file + rename) holding the
photo's result row and the names and sizes of its files. A photo is complete when its record
says ``ok`` and every file it names exists with that size; anything else (no record, a failed
record, a missing or truncated file) is redone by ``--resume``.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from skinscreen.batch.source import Item
from skinscreen.bench.coldstart import peak_rss_mb

VERBS = ("segment", "assess", "evaluate")
STATE_DIR = ".batch"


@dataclass(frozen=True)
class Job:
    """Everything a worker needs, picklable (sent to every actor)."""

    verb: str
    out_dir: str
    model: str = "litemedsam"
    variant: str | None = None
    bundle_dir: str | None = None
    threads: int | None = None
    engine: str | None = None
    box_check: bool | None = None
    tta: bool = False
    box_margin: float | None = None  # segment/assess: the model's default when None
    mm_per_pixel: float | None = None  # assess
    dermoscope: str | None = None  # assess
    color_constancy: bool = False  # assess
    masks_dir: str | None = None  # evaluate
    prompt: str = "gt-box"  # evaluate
    seed: int = 0  # evaluate
    margin: float = 0.0  # evaluate

    def options(self) -> dict:
        """The options that decide the outputs (compared on ``--resume``)."""
        d = asdict(self)
        for k in ("out_dir", "threads"):
            d.pop(k)
        return d


def rows_dir(out_dir: Path) -> Path:
    return Path(out_dir) / STATE_DIR / "rows"


def record_path(out_dir: Path, item_id: str) -> Path:
    return rows_dir(out_dir) / f"{item_id}.json"


def make_predictor(job: Job):
    """One :class:`~skinscreen.predictor.LesionPredictor` for the job (one per worker)."""
    from skinscreen.predictor import LesionPredictor

    return LesionPredictor(
        job.model,
        variant=job.variant,
        bundle_dir=Path(job.bundle_dir) if job.bundle_dir else None,
        threads=job.threads,
        engine=job.engine,
        box_check=job.box_check,
        tta=job.tta,
    )


def _box_cols(prefix: str, box) -> dict:
    vals = list(box) if box is not None else [None] * 4
    return {
        f"{prefix}_{k}": (None if v is None else round(float(v), 2))
        for k, v in zip(("x0", "y0", "x1", "y1"), vals, strict=True)
    }


def _segment(job: Job, predictor, path: Path, out: Path) -> tuple[dict, list[Path]]:
    from skinscreen.cli.segment import segment_photo

    record, seg = segment_photo(predictor, path, box_margin=job.box_margin, out_dir=out)
    row = {
        **_box_cols("box", record["box"]),
        "box_source": record["box_source"],
        "box_margin": record["box_margin"],
        **_box_cols("box_used", record["box_used"]),
        "area_px": record["area_px"],
        "width": record["image_size"][0],
        "height": record["image_size"][1],
        "iou_prediction": record["iou_prediction"],
        "model": record["model"],
        "variant": record["variant"],
        "engine": record["engine"],
        "box_check_decoder": (record.get("box_check") or {}).get("decoder"),
        "tta_views": record.get("tta_views", 1),
        **{f"ms_{k}": v for k, v in record["timings_ms"].items()},
    }
    stem = path.stem
    return row, [out / f"{stem}_mask.png", out / f"{stem}_overlay.png", out / f"{stem}.json"]


def _assess(job: Job, predictor, path: Path, out: Path) -> tuple[dict, list[Path]]:
    from skinscreen.cli.assess import write_assessment
    from skinscreen.report.build import flat_row, segment_and_assess

    a = segment_and_assess(
        predictor,
        path,
        box=None,
        box_margin=job.box_margin,
        mm_per_pixel=job.mm_per_pixel,
        dermoscope=job.dermoscope,
        color_constancy=job.color_constancy,
    )
    report = a.report
    files = write_assessment(a, path, out)
    features = flat_row(report)
    features.pop("image")
    s = report.segmentation
    row = {
        **features,
        **_box_cols("box", s.box),
        **_box_cols("box_used", s.box_used),
        "width": report.image.width,
        "height": report.image.height,
        "iou_prediction": s.iou_prediction,
        "model": s.model,
        "variant": s.variant,
        "mm_per_pixel": report.scale.mm_per_pixel,
        **{f"quality_{k}": v for k, v in report.quality.model_dump(mode="json").items()},
        "warnings_text": " | ".join(report.warnings),
        **{f"ms_{k}": round(v, 2) for k, v in s.timings_ms.items()},
    }
    return row, files


def _mask_for(job: Job, item: Item) -> Path:
    from skinscreen.errors import SkinscreenError

    if item.mask:
        return Path(item.mask)
    if job.masks_dir is None:
        raise SkinscreenError("no expert mask: give --masks DIR or a 'mask' column in SOURCE")
    for name in (f"{item.id}.png", f"{item.id}_segmentation.png"):
        if (Path(job.masks_dir) / name).is_file():
            return Path(job.masks_dir) / name
    raise SkinscreenError(
        f"no expert mask {item.id}.png or {item.id}_segmentation.png in {job.masks_dir}"
    )


def _evaluate(job: Job, predictor, item: Item, out: Path) -> tuple[dict, list[Path]]:
    from skinscreen.errors import SkinscreenError
    from skinscreen.evaluate.dataset import Pair, evaluate_pairs
    from skinscreen.io.write import png_bytes, write_files_atomic

    pair = Pair(item.id, Path(item.path), _mask_for(job, item))
    written: list[Path] = []

    def save_mask(p: Pair, mask) -> None:
        target = out / "masks" / f"{p.id}.png"
        write_files_atomic({target: png_bytes(mask)})
        written.append(target)

    res = evaluate_pairs(
        predictor, [pair], job.prompt, seed=job.seed, margin=job.margin, on_mask=save_mask
    )
    if res.failures:
        raise SkinscreenError(res.failures[0][1])
    row = dict(res.rows[0])
    row.pop("id")
    row["mask_path"] = str(pair.mask)
    for k in ("latency_ms", "encoder_ms", "decoder_ms"):
        row[f"ms_{k.removesuffix('_ms')}"] = row.pop(k)
    return row, written


def process(job: Job, predictor, item: Item, node: str | None = None) -> dict:
    """Run ``job.verb`` on one photo, write its files and then its completion record; returns
    the record. Never raises for a photo's own failure: a failed photo is a record with
    ``status`` ``"failed"`` and its ``error``."""
    from skinscreen.io.write import write_files_atomic

    out = Path(job.out_dir)
    t0 = time.perf_counter()
    files: list[Path] = []
    try:
        if job.verb == "segment":
            row, files = _segment(job, predictor, Path(item.path), out)
        elif job.verb == "assess":
            row, files = _assess(job, predictor, Path(item.path), out)
        else:
            row, files = _evaluate(job, predictor, item, out)
        status, error = "ok", None
    except Exception as e:  # noqa: BLE001 - any photo's failure is its row, never the job's
        from skinscreen.errors import SkinscreenError

        row, files, status = {}, [], "failed"
        error = (
            str(e)
            if isinstance(e, SkinscreenError)
            else f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"
        )
    finally:
        predictor.reset_image()
    record = {
        "id": item.id,
        "path": item.path,
        "status": status,
        "error": error,
        **row,
        "seconds": round(time.perf_counter() - t0, 3),
        "node": node,
        "worker_pid": os.getpid(),
        "worker_peak_rss_mb": round(peak_rss_mb() or 0.0, 1),
        "files": {str(p.relative_to(out)): p.stat().st_size for p in files},
    }
    write_files_atomic({record_path(out, item.id): json.dumps(record, indent=1).encode()})
    return record


def failed_record(job: Job, item: Item, error: str) -> None:
    """Record ``item`` as failed from the driver (its worker died on every retry)."""
    from skinscreen.io.write import write_files_atomic

    record = {"id": item.id, "path": item.path, "status": "failed", "error": error, "files": {}}
    write_files_atomic(
        {record_path(Path(job.out_dir), item.id): json.dumps(record, indent=1).encode()}
    )


def load_record(out_dir: Path, item_id: str) -> dict | None:
    """The photo's completion record, or None (absent or unreadable)."""
    try:
        return json.loads(record_path(out_dir, item_id).read_text())
    except (OSError, ValueError):
        return None


def is_complete(out_dir: Path, record: dict | None) -> bool:
    """True when ``record`` says ok and every file it names is there with its size."""
    if not record or record.get("status") != "ok":
        return False
    out = Path(out_dir)
    for name, size in record.get("files", {}).items():
        try:
            if (out / name).stat().st_size != size:
                return False
        except OSError:
            return False
    return True


def remove_partials(out_dir: Path) -> int:
    """Delete the temporary ``.<name>.*.part`` files a killed write left behind; returns how many."""
    n = 0
    out = Path(out_dir)
    for d in (out, out / "masks", rows_dir(out)):
        if d.is_dir():
            for p in d.glob(".*.part"):
                p.unlink(missing_ok=True)
                n += 1
    return n
