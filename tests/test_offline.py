"""Nothing leaves the machine: real syscall traces (strace) of the CLI verbs and the server.

Every traced run gets a fresh, empty ``HOME``; afterwards nothing may exist under
``$HOME/.cache/Microsoft`` (ONNX Runtime's telemetry store) or ``$HOME/intel`` (OpenVINO's
telemetry consent/client id), and the trace may show no ``connect``/``sendto``/``sendmsg`` to any address
but loopback (nor to a DNS resolver socket). ``TRACED_RUNS`` is the list of CLI runs: add a line
for a new verb (``batch``...) and it is traced too.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from skinscreen.paths import home as skinscreen_home

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PHOTO = EXAMPLES / "images" / "ISIC_0012099.jpg"
STRACE = shutil.which("strace")

pytestmark = pytest.mark.skipif(
    STRACE is None, reason="strace is not installed (apt install strace)"
)

# name -> CLI arguments after ``skinscreen``; {out} and {video} are filled in. Extend freely.
TRACED_RUNS: dict[str, list[str]] = {
    "segment-box": ["segment", str(PHOTO), "--box", "400,150,610,450", "--out", "{out}"],
    "segment-auto": ["segment", str(PHOTO), "--out", "{out}"],
    "assess": ["assess", str(PHOTO), "--box", "400,150,610,450", "--out", "{out}"],
    "stream": ["stream", "{video}", "--box", "{video_box}", "--max-frames", "4", "--out", "{out}"],
    # a local Ray on loopback (every Ray process is traced too: strace -f)
    "batch": ["batch", "segment", str(PHOTO), "--workers", "1", "--out", "{out}"],
}


#: runs whose own-host-name lookups are expected (see test_cli_run_stays_offline)
NAME_LOOKUPS_ALLOWED = {"batch"}


def _env(home: Path) -> dict[str, str]:
    # a user's environment: onnxruntime writes no telemetry where CI is set, so CI goes too
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ORT_", "DO_NOT_TRACK")) and k not in ("CI", "GITHUB_ACTIONS")
    }
    env["HOME"] = str(home)
    env.pop("XDG_CACHE_HOME", None)
    env["SKINSCREEN_HOME"] = str(skinscreen_home())  # the bundles stay where they are
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


def _cli() -> list[str]:
    return [sys.executable, "-c", "from skinscreen.cli.main import main; main()"]


def bad_connects(trace: str, lookups: bool = True) -> list[str]:
    """Trace lines that reach beyond loopback: an AF_INET/AF_INET6 connect or sendto to a
    non-loopback address, or a connect to the local DNS/nscd sockets (a name lookup)."""
    bad = []
    for line in trace.splitlines():
        if not re.search(r"\b(connect|sendto|sendmsg|sendmmsg)\(", line):
            continue
        if "AF_UNIX" in line:
            if lookups and ("nscd" in line or "resolve" in line):
                bad.append(line)
            continue
        m = re.search(r'inet_(?:addr|pton)\((?:AF_INET6?, )?"([^"]+)"', line)
        if m is None:
            if "AF_INET" in line:
                bad.append(line)  # an inet address we could not read: count it
            continue
        addr = m.group(1)
        if addr.startswith("::ffff:"):
            addr = addr[7:]
        if not (addr.startswith("127.") or addr == "::1"):
            bad.append(line)
    return bad


def telemetry_files(home: Path) -> list[str]:
    found = []
    for sub in (".cache/Microsoft", "intel"):
        d = home / sub
        if d.exists():
            found += [str(p) for p in d.rglob("*")] or [str(d)]
    return found


def test_trace_parser_catches_outside_addresses():
    assert bad_connects(
        'connect(3, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("20.42.65.92")}, 16)'
    )
    assert bad_connects('connect(5, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110)')
    assert not bad_connects(
        'connect(3, {sa_family=AF_INET, sin_port=htons(8000), sin_addr=inet_addr("127.0.0.1")}, 16)'
    )
    assert not bad_connects(
        'connect(3, {sa_family=AF_INET6, sin6_port=htons(1), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28)'
    )


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> tuple[Path, str]:
    from skinscreen.stream.synthetic import Segment, clip_from_files, write_video

    stem = "ISIC_0012206"
    clip = clip_from_files(
        EXAMPLES / "images" / f"{stem}.jpg",
        EXAMPLES / "masks" / f"{stem}.png",
        (Segment("static", 4),),
    )
    path = write_video(clip, tmp_path_factory.mktemp("video") / "clip.mp4")
    from skinscreen.stream.bench import initial_box

    box = ",".join(str(int(v)) for v in initial_box(clip))
    return path, box


@pytest.mark.parametrize("name", sorted(TRACED_RUNS))
def test_cli_run_stays_offline(name, tmp_path, video):
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "out"
    args = [a.format(out=out, video=video[0], video_box=video[1]) for a in TRACED_RUNS[name]]
    trace = tmp_path / "trace.txt"
    r = subprocess.run(
        [STRACE, "-f", "-qq", "-e", "trace=%network", "-o", str(trace), *_cli(), *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    text = trace.read_text()
    # Ray's processes look up this machine's own host name (glibc tries nscd, then /etc/hosts):
    # no packet leaves, and any DNS query would be a non-loopback sendto, which is still counted
    assert bad_connects(text, lookups=name not in NAME_LOOKUPS_ALLOWED) == []
    assert telemetry_files(home) == []
    assert out.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_idle_and_busy_stays_offline(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    port = _free_port()
    trace = tmp_path / "trace.txt"
    proc = subprocess.Popen(
        [
            STRACE,
            "-f",
            "-qq",
            "-e",
            "trace=%network",
            "-o",
            str(trace),
            *_cli(),
            "serve",
            "--port",
            str(port),
        ],
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(base + "/api/health", timeout=5) as r:
                    assert r.status == 200
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.5)
        time.sleep(3)  # idle
        boundary = "skinscreenboundary"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="box"\r\n\r\n'
                f"[400, 150, 610, 450]\r\n--{boundary}\r\n"
                'Content-Disposition: form-data; name="image"; filename="p.jpg"\r\n'
                "Content-Type: image/jpeg\r\n\r\n"
            ).encode()
            + PHOTO.read_bytes()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        for _ in range(2):  # busy
            req = urllib.request.Request(
                base + "/api/segment",
                data=body,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            with urllib.request.urlopen(req, timeout=120) as r:
                assert r.status == 200
        with urllib.request.urlopen(base + "/api/models", timeout=10) as r:
            assert r.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = trace.read_text()
    assert re.search(r"bind\(.*127\.0\.0\.1", text)  # the trace saw the server bind: it is live
    assert bad_connects(text) == []
    assert telemetry_files(home) == []


def test_without_the_opt_out_onnxruntime_would_write_telemetry(tmp_path):
    """The check above can fail: a bare ``import onnxruntime`` with no opt-out writes the store."""
    env = _env(tmp_path)
    env.pop("ORT_DISABLE_TELEMETRY", None)
    subprocess.run([sys.executable, "-c", "import onnxruntime"], env=env, check=True, timeout=60)
    assert telemetry_files(tmp_path) != []


def test_importing_skinscreen_sets_the_opt_outs_for_children(tmp_path):
    env = _env(tmp_path)
    env.pop("ORT_DISABLE_TELEMETRY", None)
    code = (
        "import skinscreen, os, subprocess, sys;"
        "subprocess.run([sys.executable, '-c', 'import onnxruntime'], check=True);"
        "print(os.environ['ORT_DISABLE_TELEMETRY'])"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.stdout.strip() == "1"
    assert telemetry_files(tmp_path) == []


def test_source_never_calls_the_openvino_conversion_tools():
    """OpenVINO's runtime sends nothing; its conversion tools (ovc) carry the telemetry."""
    src = ROOT / "src" / "skinscreen"
    for path in src.rglob("*.py"):
        if path.name == "_offline.py":  # it names them to explain why they are off
            continue
        text = path.read_text()
        assert "convert_model" not in text and "openvino.tools" not in text, path
