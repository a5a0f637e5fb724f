"""``skinscreen batch`` end to end: plan (source, resume), run on Ray, tables, summary."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from skinscreen.batch.source import Item, read_source
from skinscreen.batch.tables import collect, summarise, write_results, write_summary
from skinscreen.batch.work import (
    STATE_DIR,
    Job,
    is_complete,
    load_record,
    remove_partials,
    rows_dir,
)
from skinscreen.errors import SkinscreenError


@dataclass
class Plan:
    items: list[Item]
    todo: list[Item]
    skipped: int


def plan(job: Job, source: Path, *, resume: bool, path_column: str = "path") -> Plan:
    """The photos of ``source`` and those still to do. Without ``resume`` the output folder must
    not hold an earlier batch's results; with it, the earlier run's options must match."""
    items = read_source(source, path_column)
    out = Path(job.out_dir)
    state = out / STATE_DIR / "run.json"
    earlier = rows_dir(out).is_dir() and any(rows_dir(out).iterdir())
    if earlier and not resume:
        raise SkinscreenError(
            f"{out} already holds the results of a batch run: add --resume to finish it "
            "(complete photos are skipped), or choose another --out folder"
        )
    if resume and state.is_file():
        before = json.loads(state.read_text())
        if before != job.options():
            diff = sorted(
                k for k in set(before) | set(job.options()) if before.get(k) != job.options().get(k)
            )
            raise SkinscreenError(
                f"{out} holds a batch run with other options ({', '.join(diff)}): resume it with "
                "the same verb and options, or choose another --out folder"
            )
    from skinscreen.io.write import write_files_atomic

    write_files_atomic({state: json.dumps(job.options(), indent=2).encode()})
    if resume:
        remove_partials(out)
        todo = [it for it in items if not is_complete(out, load_record(out, it.id))]
    else:
        todo = list(items)
    return Plan(items, todo, len(items) - len(todo))


def run_batch(
    job: Job,
    source: Path,
    *,
    resume: bool = False,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float | None = None,
    path_column: str = "path",
    progress_every_s: float = 2.0,
) -> dict:
    """Plan, run the photos still to do on Ray, write ``results.parquet`` and ``summary.json``;
    returns the summary."""
    from skinscreen.batch.ray_run import import_ray, on_loopback, run

    import_ray(local=on_loopback(address))  # fail before planning when Ray is absent
    p = plan(job, source, resume=resume, path_column=path_column)
    t0 = time.perf_counter()
    stats = run(
        job,
        p.todo,
        address=address,
        workers=workers,
        cpus_per_worker=cpus_per_worker,
        progress_every_s=progress_every_s,
    )
    rows = collect(job, p.items)
    write_results(job, rows)
    summary = summarise(
        job, rows, skipped=p.skipped, seconds=stats.seconds, processed=stats.processed
    )
    summary["ok"] = sum(r["status"] == "ok" for r in rows if r["id"] in {it.id for it in p.todo})
    summary["failed"] = len(p.todo) - summary["ok"]
    summary["workers"] = stats.workers
    summary["wall_seconds"] = round(time.perf_counter() - t0, 2)
    write_summary(job, summary)
    return summary
