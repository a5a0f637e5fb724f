"""Load benchmark of ``skinscreen serve`` on loopback (a benchmark, not a test).

N concurrent clients POST /api/segment (the example photos, boxes that vary) for D seconds while
a poller times /api/health; reports throughput, latency percentiles of answered requests, status
counts, health latency and the server's RSS before, at peak and after an idle pause.

    python scripts/load_bench.py --clients 50 --seconds 60 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = sorted((ROOT / "examples" / "images").glob("*.jpg"))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--idle", type=float, default=15, help="pause before the 'after' RSS")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "skinscreen", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 300
        while True:
            try:
                httpx.get(url + "/api/health", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.time() > deadline:
                    raise SystemExit(server.stderr.read().decode()[-2000:]) from None
                time.sleep(0.5)
        with httpx.Client() as c:  # one warm-up request
            c.post(
                url + "/api/segment",
                files={"image": PHOTOS[0].read_bytes()},
                data={"box": "[300, 150, 700, 500]", "features": "false"},
                timeout=300,
            )
        rss_before = rss_mb(server.pid)
        stop = time.time() + a.seconds
        codes: Counter = Counter()
        latencies: list[float] = []
        health: list[float] = []
        health_fail = 0
        peak = [rss_before]
        lock = threading.Lock()
        data = [p.read_bytes() for p in PHOTOS]

        def client(i: int) -> None:
            k = 0
            with httpx.Client(timeout=120) as c:
                while time.time() < stop:
                    photo = data[(i + k) % len(data)]
                    box = [250 + (i % 7) * 10, 120 + k % 5 * 10, 700, 520]
                    t = time.perf_counter()
                    try:
                        r = c.post(
                            url + "/api/segment",
                            files={"image": ("p.jpg", photo)},
                            data={"box": json.dumps(box), "features": str(k % 2 == 0).lower()},
                        )
                        code = r.status_code
                        if code == 503:
                            time.sleep(float(r.headers.get("Retry-After", "1")))
                    except httpx.HTTPError as e:
                        code = type(e).__name__
                    dt = time.perf_counter() - t
                    with lock:
                        codes[code] += 1
                        if code == 200:
                            latencies.append(dt)
                    k += 1

        def poll_health() -> None:
            nonlocal health_fail
            with httpx.Client(timeout=5) as c:
                while time.time() < stop:
                    t = time.perf_counter()
                    try:
                        c.get(url + "/api/health").raise_for_status()
                        health.append(time.perf_counter() - t)
                    except httpx.HTTPError:
                        health_fail += 1
                    peak.append(rss_mb(server.pid))
                    time.sleep(0.5)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
        threads.append(threading.Thread(target=poll_health))
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.time() - t0
        time.sleep(a.idle)
        rss_after = rss_mb(server.pid)
        out = {
            "clients": a.clients,
            "seconds": round(wall, 1),
            "status_counts": {str(k): v for k, v in sorted(codes.items(), key=str)},
            "answered_200": len(latencies),
            "throughput_rps": round(len(latencies) / wall, 3),
            "latency_s": {f"p{q}": round(pct(latencies, q), 3) for q in (50, 95, 99)},
            "health_s": {
                "n": len(health),
                "failed": health_fail,
                "p50": round(pct(health, 50), 4),
                "max": round(max(health), 4) if health else None,
            },
            "rss_mb": {
                "before": round(rss_before),
                "peak": round(max(peak)),
                "after": round(rss_after),
            },
            "cpu": next(
                (
                    ln.split(":", 1)[1].strip()
                    for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")
                ),
                "?",
            ),
            "cpus": len(os.sched_getaffinity(0)),
        }
        print(json.dumps(out, indent=1))
        if a.json:
            a.json.write_text(json.dumps(out, indent=1))
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
