"""Completion records -> ``results.parquet`` (one row per photo) and ``summary.json``."""

from __future__ import annotations

import io
import json
from pathlib import Path

from skinscreen.batch.source import Item
from skinscreen.batch.work import Job, load_record

#: Columns first in ``results.parquet``, in this order; the verb's own columns follow.
LEAD = ["id", "path", "status", "error"]
#: Columns that differ between runs of the same input (timings, placement): everything else is
#: deterministic.
RUN_COLUMNS_PREFIX = ("ms_", "seconds", "node", "worker_")


def collect(job: Job, items: list[Item]) -> list[dict]:
    """One row per item, sorted by id: its completion record (``files`` as a ``;``-joined
    list), or a failed row when no record was written."""
    out = Path(job.out_dir)
    rows = []
    for it in items:
        rec = load_record(out, it.id) or {
            "id": it.id,
            "path": it.path,
            "status": "failed",
            "error": "no result recorded (the job stopped before this photo finished)",
        }
        rec = dict(rec)
        rec["files"] = ";".join(sorted(rec.get("files") or {}))
        rows.append(rec)
    return sorted(rows, key=lambda r: r["id"])


def write_results(job: Job, rows: list[dict]) -> Path:
    """``OUT/results.parquet``: the union of the rows' columns (missing values null), written
    atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from skinscreen.io.write import write_files_atomic

    cols = list(LEAD)
    for r in rows:
        cols += [k for k in r if k not in cols]
    table = pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in rows])
    buf = io.BytesIO()
    pq.write_table(table, buf)
    path = Path(job.out_dir) / "results.parquet"
    write_files_atomic({path: buf.getvalue()})
    return path


def summarise(job: Job, rows: list[dict], *, skipped: int, seconds: float, processed: int) -> dict:
    """Counts (this run's ``ok``/``failed`` among the photos it processed, ``skipped`` as
    already complete, and ``total_ok``/``total_failed`` over all photos), throughput, and for
    ``evaluate`` the metrics of :meth:`EvalResult.summary` over every ok photo."""
    ok = [r for r in rows if r["status"] == "ok"]
    s = {
        "verb": job.verb,
        "photos": len(rows),
        "processed": processed,
        "skipped": skipped,
        "total_ok": len(ok),
        "total_failed": len(rows) - len(ok),
        "seconds": round(seconds, 2),
        "photos_per_s": round(processed / seconds, 3) if seconds > 0 and processed else None,
        "options": job.options(),
    }
    if job.verb == "evaluate" and ok:
        from skinscreen.evaluate.dataset import EvalResult

        metric_rows = [
            {
                **r,
                "latency_ms": r["ms_latency"],
                "encoder_ms": r["ms_encoder"],
                "decoder_ms": r["ms_decoder"],
            }
            for r in ok
        ]
        fails = [(r["id"], r["error"]) for r in rows if r["status"] != "ok"]
        s["metrics"] = EvalResult(metric_rows, fails).summary(job.prompt, job.model)
    return s


def write_summary(job: Job, summary: dict) -> None:
    from skinscreen.io.write import write_files_atomic

    write_files_atomic({Path(job.out_dir) / "summary.json": json.dumps(summary, indent=2).encode()})
