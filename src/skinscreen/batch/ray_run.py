"""The Ray side of ``skinscreen batch``: a local Ray on loopback (or an existing cluster), a Ray
Data pipeline over the photo list, an actor pool with one predictor per actor, progress.

Fault tolerance comes from Ray: an actor whose process dies is restarted (``max_restarts=-1``)
and its in-flight photos are retried on it (``max_task_retries``); a photo whose worker dies on
every retry is recorded as failed by the driver (``DataContext.max_errored_blocks = -1`` keeps
the job going). Results are never duplicated: every write of a photo replaces the last one
atomically, and the tables are built from one completion record per photo.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from skinscreen.batch.source import Item
from skinscreen.batch.work import Job, failed_record, make_predictor, process, record_path
from skinscreen.errors import SkinscreenError

INSTALL_HINT = 'pip install "skinscreen[scale]"'
#: Retries of a photo whose worker process died (a crash, OOM kill, a lost node).
TASK_RETRIES = 3
#: Object store of the local Ray: results are a few short strings per photo.
LOCAL_OBJECT_STORE_BYTES = 128 * 2**20


def on_loopback(address: str | None) -> bool:
    """True for a local run (no address) or a cluster address on this machine's loopback."""
    if address is None:
        return True
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def import_ray(local: bool = True):
    """``ray`` (with Ray Data), or a :class:`SkinscreenError` saying how to install it.

    ``local``: Ray runs on this machine's loopback (a local Ray, or a cluster at 127.0.0.1):
    then Ray is made to take 127.0.0.1 as this node's address
    (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read when ``ray`` is first imported), so every
    server binds loopback only and a 127.0.0.1 cluster address is not rewritten to the
    machine's interface address."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no usage report to anyone
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # CPU only; quiets a warning
    if local:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise SkinscreenError(
            f"skinscreen batch runs on Ray Data, which is not installed: {INSTALL_HINT}"
        ) from None
    return ray


class PhotoWorker:
    """A Ray Data actor: one predictor, loaded once, for every photo sent to it."""

    def __init__(self, job: Job):
        import ray

        self.job = job
        self.predictor = make_predictor(job)
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        ids, status = [], []
        for id_, path, mask in zip(batch["id"], batch["path"], batch["mask"], strict=True):
            item = Item(str(id_), str(path), str(mask) or None)
            rec = process(self.job, self.predictor, item, node=self.node)
            ids.append(rec["id"])
            status.append(rec["status"])
        return {"id": np.array(ids), "status": np.array(status)}


@dataclass
class RunStats:
    processed: int = 0
    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    workers: int = 0


class Progress:
    """``batch VERB: done/total (n failed), x photos/s, ETA m:ss`` on stderr, every few seconds."""

    def __init__(self, verb: str, total: int, every_s: float = 2.0, stream=None):
        self.verb, self.total, self.every_s = verb, total, every_s
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.last = 0.0

    def update(self, done: int, failed: int, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        rate = done / (now - self.t0) if now > self.t0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else None
        eta_s = "?" if eta is None else f"{int(eta // 60)}:{int(eta % 60):02d}"
        self.stream.write(
            f"batch {self.verb}: {done}/{self.total} photos ({failed} failed), "
            f"{rate:.2f} photos/s, ETA {eta_s}\n"
        )
        self.stream.flush()


def _quiet_ray_logs() -> None:
    for name in ("ray", "ray.data", "ray._private", "ray.util"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _start_ray(ray, address: str | None, num_cpus: int, temp_dir: str | None) -> None:
    env = {k: os.environ[k] for k in ("SKINSCREEN_HOME", "SKINSCREEN_ENGINE") if k in os.environ}
    common = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address is None:
        # loopback only: the node's address, hence every server's (see import_ray); a
        # RAY_ADDRESS in the environment is for --ray-address, not for a local run
        os.environ.pop("RAY_ADDRESS", None)
        from skinscreen._offline import contain_local_ray

        with contain_local_ray():  # Ray's usage-stats process probes cloud metadata
            ray.init(
                num_cpus=num_cpus,
                _node_ip_address="127.0.0.1",
                include_dashboard=False,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                _temp_dir=temp_dir,
                **common,
            )
    else:
        ray.init(address=address, runtime_env={"env_vars": env} if env else None, **common)


def run(
    job: Job,
    todo: list[Item],
    *,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float | None = None,
    progress_every_s: float = 2.0,
) -> RunStats:
    """Process ``todo`` on Ray: a local Ray bound to 127.0.0.1 (``address`` None; stopped
    afterwards) or the cluster at ``address``. Every photo of ``todo`` ends with a completion
    record (ok or failed). ``workers``: actors (default: local, 1 per 2 CPUs; cluster, its CPUs
    / ``cpus_per_worker``); ``cpus_per_worker``: Ray CPUs reserved per actor (default: local,
    just under CPUs / workers so the read stage keeps a share; cluster, 1)."""
    ray = import_ray(local=on_loopback(address))
    _quiet_ray_logs()
    stats = RunStats()
    if not todo:
        return stats
    out = Path(job.out_dir)
    for it in todo:  # a stale (failed or partial) record must not count for this run
        record_path(out, it.id).unlink(missing_ok=True)
    temp_dir = None
    local = address is None
    num_cpus = os.cpu_count() or 1
    if local:
        temp_dir = tempfile.mkdtemp(prefix="skinscreen-ray-")
        workers = workers or max(1, num_cpus // 2)
        cpus_per_worker = cpus_per_worker or max(0.05, min(1.0, (num_cpus - 0.5) / workers))
        if job.threads is None:
            job = replace(job, threads=max(1, num_cpus // workers))
    t0 = time.perf_counter()
    try:
        _start_ray(ray, address, num_cpus, temp_dir)
        if not local:
            cpus_per_worker = cpus_per_worker or 1.0
            if workers is None:
                workers = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_worker))
            if job.threads is None:
                job = replace(job, threads=max(1, int(cpus_per_worker)))
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        ctx.enable_auto_log_stats = False
        ctx.max_errored_blocks = -1  # a photo whose worker always dies: recorded, job goes on
        rows = [{"id": it.id, "path": it.path, "mask": it.mask or ""} for it in todo]
        ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), 100_000))
        ds = ds.map_batches(
            PhotoWorker,
            fn_constructor_args=(job,),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=cpus_per_worker,
            max_restarts=-1,
            max_task_retries=TASK_RETRIES,
        )
        bar = Progress(job.verb, len(todo), progress_every_s)
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for s in batch["status"]:
                stats.processed += 1
                stats.ok += s == "ok"
                stats.failed += s != "ok"
            bar.update(stats.processed, stats.failed)
        bar.update(stats.processed, stats.failed, force=True)
    except Exception as e:
        if isinstance(e, SkinscreenError):
            raise
        raise SkinscreenError(f"the batch stopped: {type(e).__name__}: {e}") from e
    finally:
        stats.seconds = time.perf_counter() - t0
        stats.workers = workers or 0
        if ray.is_initialized():
            ray.shutdown()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
    for it in todo:
        if not record_path(out, it.id).exists():
            failed_record(
                job,
                it,
                f"its worker process died on every try ({TASK_RETRIES + 1}): the photo may need "
                "more memory than a worker has",
            )
            stats.failed += 1
    return stats
