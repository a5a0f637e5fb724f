"""``skinscreen batch`` on a real Ray, on loopback only: same files as the single-process verbs,
a corrupt photo is a failed row, a killed worker is retried, a killed job resumes with exactly
one complete result per photo, and a two-node cluster (two ``ray start`` nodes on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import csv
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip(
    "ray", reason='skinscreen batch needs the scale extra: pip install "skinscreen[scale]"'
)
pq = pytest.importorskip("pyarrow.parquet")

from tests.conftest import EXAMPLES, ROOT, SHARED_DATA  # noqa: E402

BIN = Path(sys.executable).parent
SKINSCREEN = [sys.executable, "-m", "skinscreen"]
ENV = {
    **{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
    "PYTHONPATH": str(ROOT / "src"),
    "SKINSCREEN_ENGINE": "onnxruntime",
}
#: A second Ray node joining the head at 127.0.0.1, as ``ray.cluster_utils.Cluster.add_node``
#: starts one. (``ray start --address=127.0.0.1:PORT`` would rewrite 127.0.0.1 to this machine's
#: interface address, and refuses to join with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0.)
SECOND_NODE = """
import sys, time
from ray._private.node import Node
from ray._private.parameter import RayParams
Node(RayParams(gcs_address=sys.argv[1], node_ip_address="127.0.0.1", num_cpus=1, num_gpus=0,
     object_store_memory=100_000_000, temp_dir=sys.argv[2], min_worker_port=0, max_worker_port=0,
     node_manager_port=0, include_log_monitor=False), head=False, shutdown_at_exit=True,
     spawn_reaper=False)
print("node up", flush=True)
while True:
    time.sleep(60)
"""
TIMEOUT_S = 300


# ---------------------------------------------------------------- processes and sockets (/proc)


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for st in glob.glob("/proc/[0-9]*/stat"):
        try:
            ppid = int(Path(st).read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(st.split("/")[2]))
    return kids


def descendants(pid: int) -> set[int]:
    kids, out, stack = _children(), set(), [pid]
    while stack:
        p = stack.pop()
        out.add(p)
        stack += kids.get(p, [])
    return out


def with_env_marker(marker: str) -> set[int]:
    """Processes whose environment holds ``SKINSCREEN_TEST_RAY=marker`` (this test's cluster)."""
    needle = f"SKINSCREEN_TEST_RAY={marker}".encode()
    found = set()
    for env in glob.glob("/proc/[0-9]*/environ"):
        try:
            if needle in Path(env).read_bytes().split(b"\0"):
                found.add(int(env.split("/")[2]))
        except OSError:
            continue
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def listening(pids: set[int]) -> list[str]:
    """``ADDRESS:PORT`` (hex, as /proc/net/tcp*) of every TCP socket the processes listen on."""
    inodes = set()
    for pid in pids:
        for fd in glob.glob(f"/proc/{pid}/fd/*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # LISTEN
                out.append(f[1])
    return out


def is_loopback(hex_addr: str) -> bool:
    addr = hex_addr.split(":")[0]
    if len(addr) == 8:  # IPv4, little-endian: 127.x.x.x ends in 7F
        return addr.endswith("7F")
    return addr == "00000000000000000000000001000000" or (
        addr.startswith("0000000000000000FFFF0000") and addr.endswith("7F")
    )


def kill_all(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- photos and runs


def photo_folder(tmp: Path, n: int, corrupt: bool = False, dev: int = 0) -> Path:
    """``n`` photos: the samples in examples/ under numbered names (same pixels), plus ``dev``
    photos of the shared dev set when present, plus one corrupt file."""
    d = tmp / "photos"
    d.mkdir()
    samples = sorted((EXAMPLES / "images").glob("*.jpg"))
    for i in range(n):
        src = samples[i % len(samples)]
        shutil.copy(src, d / (src.name if i < len(samples) else f"{src.stem}_copy{i}.jpg"))
    dev_dir = SHARED_DATA / "lesions-dev" / "images"
    if dev and dev_dir.is_dir():
        for p in sorted(dev_dir.glob("*.jpg"))[:dev]:
            shutil.copy(p, d / p.name)
    if corrupt:
        (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    return d


def batch_cmd(verb: str, source: Path, out: Path, *extra: str) -> list[str]:
    return [*SKINSCREEN, "batch", verb, str(source), "--out", str(out), *extra]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=TIMEOUT_S, cwd=ROOT)


def results(out: Path) -> list[dict]:
    return pq.read_table(out / "results.parquet").to_pylist()


def records(out: Path) -> list[Path]:
    return sorted((out / ".batch" / "rows").glob("*.json"))


def wait_for_records(out: Path, n: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while len(records(out)) < n:
        assert proc.poll() is None, f"the batch ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, "no results in time"
        time.sleep(0.1)


def assert_exactly_one_complete_result_each(out: Path, photos: Path) -> None:
    from skinscreen.batch.work import is_complete, load_record

    ids = sorted(p.stem for p in photos.iterdir())
    rows = results(out)
    assert [r["id"] for r in rows] == ids  # one row per photo, none twice
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows if r["error"]]
    assert all(is_complete(out, load_record(out, i)) for i in ids)
    for i in ids:
        assert Image.open(out / f"{i}_mask.png").size == Image.open(photos / f"{i}.jpg").size
    assert not list(out.rglob("*.part")), "a temporary file was left behind"


def mask(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def same_json(a: Path, b: Path) -> None:
    ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
    for j in (ja, jb):
        j.pop("timings_ms"), j.pop("image")
    assert ja == jb


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """``skinscreen segment`` (one process) on the samples."""
    out = tmp_path_factory.mktemp("single")
    r = run([*SKINSCREEN, "segment", str(EXAMPLES / "images"), "--out", str(out)])
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes on this machine, both on 127.0.0.1 (``ray start --head`` and a second node
    joining it, :data:`SECOND_NODE`), 1 CPU each; yields the address and the processes' marker. Torn down by killing exactly
    the processes started here (never ``ray stop``, which would stop every Ray here)."""
    marker = f"{os.getpid()}-{time.time_ns()}"
    temp = tempfile.mkdtemp(prefix="ssr-")  # short: Ray's socket paths live under it
    env = {**ENV, "SKINSCREEN_TEST_RAY": marker, "RAY_USAGE_STATS_ENABLED": "0"}
    ray = str(BIN / "ray")
    port = free_port()
    common = [
        "--node-ip-address=127.0.0.1",
        "--num-cpus=1",
        "--object-store-memory=100000000",
        f"--temp-dir={temp}",
        "--disable-usage-stats",
    ]
    try:
        subprocess.run(
            [
                ray,
                "start",
                "--head",
                f"--port={port}",
                "--include-dashboard=false",
                f"--ray-client-server-port={free_port()}",
                f"--dashboard-agent-listen-port={free_port()}",
                *common,
            ],
            env={**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"},
            check=True,
            capture_output=True,
            timeout=120,
        )
        address = f"127.0.0.1:{port}"
        node = subprocess.Popen(
            [sys.executable, "-c", SECOND_NODE, address, temp],
            env={**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert node.stdout.readline().strip() == "node up"
        yield address, marker
        pids = with_env_marker(marker)
        assert pids and all(is_loopback(a) for a in listening(pids)), listening(pids)
    finally:
        kill_all(with_env_marker(marker))
        shutil.rmtree(temp, ignore_errors=True)


# ---------------------------------------------------------------- tests


def test_local_run_equals_single_process_and_a_corrupt_photo_is_a_failed_row(tmp_path, reference):
    photos = photo_folder(tmp_path, 4, corrupt=True, dev=1)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        batch_cmd("segment", photos, out, "--workers", "2"),
        env=ENV,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    addresses: set[str] = set()
    while proc.poll() is None:  # every socket Ray listens on while it runs
        addresses |= set(listening(descendants(proc.pid)))
        time.sleep(0.5)
    stdout, stderr = proc.communicate()
    assert proc.returncode == 1, stderr  # one photo failed
    assert addresses and all(is_loopback(a) for a in addresses), addresses
    rows = {r["id"]: r for r in results(out)}
    assert rows["broken"]["status"] == "failed" and rows["broken"]["error"]
    assert not (out / "broken_mask.png").exists()
    ok = [i for i, r in rows.items() if r["status"] == "ok"]
    assert len(ok) == len(rows) - 1
    for sample in (EXAMPLES / "images").glob("*.jpg"):  # the same files as `skinscreen segment`
        s = sample.stem
        assert (out / f"{s}_mask.png").read_bytes() == (reference / f"{s}_mask.png").read_bytes()
        same_json(out / f"{s}.json", reference / f"{s}.json")
        assert rows[s]["area_px"] == json.loads((reference / f"{s}.json").read_text())["area_px"]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["ok"], summary["failed"], summary["skipped"]) == (len(ok), 1, 0)
    assert "photos/s" in stderr and "1 failed" in stderr
    # the job left no Ray process behind
    assert not any("ray" in cmdline(p) for p in descendants(proc.pid) - {proc.pid})


def test_killed_job_resumes_with_exactly_one_complete_result_per_photo(tmp_path, cluster):
    photos = photo_folder(tmp_path, 8)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        batch_cmd("segment", photos, out, "--workers", "2"),
        env=ENV,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    wait_for_records(out, 2, proc)
    tree = descendants(proc.pid)
    kill_all(tree)  # the driver, its local Ray and the workers: a killed job
    proc.wait(timeout=60)
    done_before = len(records(out))
    assert done_before < 8, "the job finished before it could be killed"
    r = run(batch_cmd("segment", photos, out, "--resume", "--json", "--ray-address", cluster[0]))
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["skipped"] >= 2 and s["processed"] == 8 - s["skipped"] and s["failed"] == 0
    assert_exactly_one_complete_result_each(out, photos)
    # without --resume an output folder that holds results is refused
    again = run(batch_cmd("segment", photos, out, "--ray-address", cluster[0]))
    assert again.returncode == 1 and "--resume" in again.stderr


def test_killed_worker_photos_are_retried(tmp_path, cluster):
    address, marker = cluster
    photos = photo_folder(tmp_path, 8)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        batch_cmd(
            "segment",
            photos,
            out,
            "--workers",
            "2",
            "--cpus-per-worker",
            "0.75",
            "--ray-address",
            address,
        ),
        env=ENV,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_records(out, 1, proc)
    workers = {p for p in with_env_marker(marker) if "PhotoWorker" in cmdline(p)}
    assert workers, "no worker process found"
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 0, stderr
    assert_exactly_one_complete_result_each(out, photos)
    pids = {r["worker_pid"] for r in results(out)}
    assert pids - workers, "no photo was processed by a restarted worker"


def test_two_node_cluster_segment_and_evaluate_equal_single_process(tmp_path, cluster, reference):
    address, _ = cluster
    out = tmp_path / "seg"
    r = run(
        batch_cmd(
            "segment",
            EXAMPLES / "images",
            out,
            "--workers",
            "2",
            "--cpus-per-worker",
            "0.75",
            "--ray-address",
            address,
        )
    )
    assert r.returncode == 0, r.stderr
    rows = results(out)
    assert len({row["node"] for row in rows}) == 2  # both nodes worked
    for row in rows:
        s = row["id"]
        assert (out / f"{s}_mask.png").read_bytes() == (reference / f"{s}_mask.png").read_bytes()
        same_json(out / f"{s}.json", reference / f"{s}.json")

    ev, single = tmp_path / "ev", tmp_path / "ev1"
    r = run(
        batch_cmd(
            "evaluate",
            EXAMPLES / "images",
            ev,
            "--masks",
            str(EXAMPLES / "masks"),
            "--json",
            "--ray-address",
            address,
        )
    )
    assert r.returncode == 0, r.stderr
    one = run(
        [
            *SKINSCREEN,
            "evaluate",
            "--images",
            str(EXAMPLES / "images"),
            "--masks",
            str(EXAMPLES / "masks"),
            "--out",
            str(single),
            "--json",
        ]
    )
    assert one.returncode == 0, one.stderr
    m, m1 = json.loads(r.stdout)["metrics"], json.loads(one.stdout)
    for k in ("n", "dice", "jaccard", "threshold_jaccard", "failure_rate"):
        assert m[k] == m1[k], k
    for p in (single / "masks").glob("*.png"):
        assert np.array_equal(mask(p), mask(ev / "masks" / p.name))


def test_assess_equals_single_process(tmp_path, cluster):
    photos = photo_folder(tmp_path, 2)
    out, single = tmp_path / "out", tmp_path / "single"
    r = run(batch_cmd("assess", photos, out, "--dermoscope", "fov20", "--ray-address", cluster[0]))
    assert r.returncode == 0, r.stderr
    one = run([*SKINSCREEN, "assess", str(photos), "--dermoscope", "fov20", "--out", str(single)])
    assert one.returncode == 0, one.stderr
    with open(single / "features.csv") as f:
        expected = {row["image"]: row for row in csv.DictReader(f)}
    for row in results(out):
        e = expected[f"{row['id']}.jpg"]
        for k in (
            "area_px",
            "area_mm2",
            "compactness",
            "color_count",
            "asymmetric_axes",
            "ita_deg",
        ):
            assert str(row[k]) == e[k], k
        assert (out / f"{row['id']}_mask.png").read_bytes() == (
            single / f"{row['id']}_mask.png"
        ).read_bytes()
        assert row["quality_sharpness"] is not None
        for pic in ("overlay", "heatmap"):
            assert (out / f"{row['id']}_{pic}.png").is_file()


def test_without_ray_batch_says_how_to_install(tmp_path):
    blocker = tmp_path / "noray"
    blocker.mkdir()
    (blocker / "ray.py").write_text("raise ImportError('ray is not installed')\n")
    env = {**ENV, "PYTHONPATH": f"{blocker}{os.pathsep}{ROOT / 'src'}"}
    r = subprocess.run(
        [*SKINSCREEN, "batch", "segment", str(EXAMPLES / "images"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 1
    assert 'pip install "skinscreen[scale]"' in r.stderr
    assert not (tmp_path / "o").exists()


def test_source_lists_and_tables(tmp_path):
    import pyarrow as pa

    from skinscreen.batch.source import read_source
    from skinscreen.errors import SkinscreenError

    imgs = sorted((EXAMPLES / "images").glob("*.jpg"))
    (tmp_path / "list.txt").write_text(
        "# photos\n" + "\n".join(str(p) for p in reversed(imgs)) + "\n\n"
    )
    (tmp_path / "list.csv").write_text(
        "path,site\n" + "".join(f"{os.path.relpath(p, tmp_path)},a\n" for p in imgs)
    )
    pq.write_table(pa.table({"file": [str(p) for p in imgs]}), tmp_path / "t.parquet")
    want = [str(p.resolve()) for p in imgs]
    assert [i.path for i in read_source(tmp_path / "list.txt")] == want
    assert [i.path for i in read_source(tmp_path / "list.csv")] == want
    assert [i.path for i in read_source(tmp_path / "t.parquet", "file")] == want
    assert [i.path for i in read_source(EXAMPLES / "images")] == want
    with pytest.raises(SkinscreenError, match="--path-column"):
        read_source(tmp_path / "t.parquet")
    (tmp_path / "dup.txt").write_text(f"{imgs[0]}\n{tmp_path / imgs[0].name}\n")
    with pytest.raises(SkinscreenError, match="twice"):
        read_source(tmp_path / "dup.txt")
