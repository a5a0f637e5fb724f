"""Throughput of ``skinscreen batch segment`` against one-process ``skinscreen segment`` on the
same photos, in one run: wall time (Ray start and model loads included), photos/s, and each
worker's peak memory. Not a test: ``make bench-batch`` (or run this script) and read the table.

    python scripts/bench_batch.py IMAGES [--workers 1,2] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - t0, r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", type=Path)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument(
        "--out", type=Path, default=None, help="keep outputs here (default: a temp dir)"
    )
    args = ap.parse_args()
    import pyarrow.parquet as pq

    n = sum(1 for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    base = args.out or Path(tempfile.mkdtemp(prefix="bench-batch-"))
    exe = [sys.executable, "-m", "skinscreen"]
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    print(
        f"{n} photos in {args.images}; CPU {cpu}, {os.cpu_count()} logical CPUs; load average {os.getloadavg()[0]:.1f} at start"
    )
    rows = []
    wall, r = timed([*exe, "segment", str(args.images), "--out", str(base / "single")])
    if r.returncode not in (0, 1):
        sys.exit(r.stderr)
    rows.append(("segment (1 process)", "-", wall, n / wall, None))
    for w in [int(x) for x in args.workers.split(",")]:
        out = base / f"batch-w{w}"
        wall, r = timed(
            [
                *exe,
                "batch",
                "segment",
                str(args.images),
                "--out",
                str(out),
                "--workers",
                str(w),
                "--json",
            ]
        )
        if r.returncode not in (0, 1):
            sys.exit(r.stderr)
        s = json.loads(r.stdout)
        t = pq.read_table(out / "results.parquet").to_pandas()
        rss = t.groupby("worker_pid")["worker_peak_rss_mb"].max()
        rows.append((f"batch segment --workers {w}", s["seconds"], wall, n / wall, rss.max()))
        same = all(
            (out / p.name).read_bytes() == p.read_bytes()
            for p in (base / "single").glob("*_mask.png")
        )
        print(
            f"workers {w}: masks identical to the single process: {same}; processing {s['photos_per_s']} photos/s"
        )
    print(f"load average {os.getloadavg()[0]:.1f} at end\n")
    print("| run | Ray + processing s | wall s | photos/s (wall) | peak RSS per worker MB |")
    print("|---|---:|---:|---:|---:|")
    for name, proc_s, wall, rate, rss in rows:
        print(
            f"| {name} | {proc_s if proc_s == '-' else f'{proc_s:.1f}'} | {wall:.1f} | {rate:.2f} | {'-' if rss is None else f'{rss:.0f}'} |"
        )
    if args.out is None:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
