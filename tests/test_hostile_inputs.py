"""The hostile-input corpus (tests/hostile_corpus.py, generated on the fly): every case refused
with the project's error, in process and through the real CLI (exit 1, one clear line per item,
no traceback, nothing written under --out, peak RSS under 1.5 GB); bad boxes and arrays too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from skinscreen.errors import ImageError, PromptError
from skinscreen.io.image import load_image, load_mask

from .hostile_corpus import cases

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "examples" / "images" / "ISIC_0012099.jpg"
RSS_LIMIT_MB = 1536


@cache
def corpus() -> tuple[tuple[str, bytes], ...]:
    return tuple(cases())


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    for name, data in corpus():
        (d / name).write_bytes(data)
    return d


def test_the_corpus_has_at_least_80_cases_with_distinct_names():
    names = [n for n, _ in corpus()]
    assert len(names) >= 80 and len(set(names)) == len(names)
    assert all(len(b) < 4 * 2**20 for _, b in corpus())  # small files


@pytest.mark.parametrize("name", [n for n, _ in corpus()])
def test_every_case_is_refused_with_a_one_line_error(name, corpus_dir):
    path = corpus_dir / name
    with pytest.raises(ImageError) as e:
        load_image(path)
    assert "\n" not in str(e.value) and str(e.value).startswith(str(path))
    data = path.read_bytes()
    with pytest.raises(ImageError):
        load_image(data)  # the web app's path: bytes in memory
    with pytest.raises(ImageError):
        load_mask(path)


@pytest.mark.parametrize(
    "array",
    [
        np.full((64, 64, 3), np.nan, np.float32),
        np.pad(np.zeros((63, 64, 3)), ((0, 1), (0, 0), (0, 0)), constant_values=np.inf),
        np.full((64, 64), -np.inf),
        np.zeros((64, 64, 2), np.uint8),
        np.zeros((64,), np.uint8),
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((64, 64, 3), bool),
        np.zeros((64, 64, 3), object),
        np.broadcast_to(np.zeros(1, np.uint8), (30_000, 30_000, 3)),  # 2.7 GB, never allocated
    ],
    ids=["nan", "inf", "neg-inf", "2-channels", "1-d", "empty", "bool", "object", "huge"],
)
def test_bad_arrays_are_refused(array):
    with pytest.raises(ImageError):
        load_image(array)


def _run_cli(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, float]:
    """The real CLI in a child process; returns (result, the child's peak RSS in MB)."""
    rss_file = tmp_path / "rss.txt"
    code = (
        "from skinscreen.bench.coldstart import peak_rss_mb\n"
        "from skinscreen.cli.main import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "finally:\n"
        # VmHWM: this process's own peak (getrusage's ru_maxrss keeps the parent's across exec)
        f"    open({str(rss_file)!r}, 'w').write(str(peak_rss_mb()))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    return r, float(rss_file.read_text())


@pytest.mark.parametrize("verb", ["segment", "assess"])
def test_the_cli_refuses_the_whole_corpus_cleanly(verb, corpus_dir, tmp_path):
    out = tmp_path / "out"
    files = sorted(str(p) for p in corpus_dir.iterdir())
    box = ["--box", "10,10,50,50"] if verb == "segment" else []  # assess: automatic, many photos
    r, rss_mb = _run_cli([verb, *files, *box, "--out", str(out)], tmp_path)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr and "Warning" not in r.stderr, r.stderr[-3000:]
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == len(files), r.stderr[-3000:]
    for f in files:  # one line per item, naming it
        assert sum(ln.startswith(f"error: {f}: ") for ln in lines) == 1, f
    assert not out.exists() or not any(out.rglob("*")), list(out.rglob("*"))
    assert rss_mb < RSS_LIMIT_MB


@pytest.mark.parametrize(
    "box, code, message",
    [
        ("nan,10,50,50", (1, 2), "NaN"),
        ("inf,10,50,50", (1, 2), "NaN or infinity"),
        ("0,0,50000,40", (1,), "outside"),
        ("60,60,50,50", (1,), "empty"),
        ("10,10,10,10", (1,), "empty"),
        ("-5,10,50,50", (1,), "outside"),
        ("1,2,3", (2,), "four numbers"),
        ("a,b,c,d", (2,), ""),
        ("1e400,0,5,5", (1, 2), ""),
    ],
)
def test_bad_boxes_through_the_cli(box, code, message, tmp_path, capsys):
    """In process (the real click entry point; the subprocess runs above cover the process)."""
    from skinscreen.cli.main import main

    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["segment", str(PHOTO), f"--box={box}", "--out", str(out)])
    err = capsys.readouterr().err
    assert e.value.code in code and "Traceback" not in err, err[-2000:]
    assert message in err
    assert not out.exists() or not any(out.rglob("*"))


def test_a_bad_box_is_refused_before_the_encoder_runs(predictor):
    calls = []
    real = predictor.engine.encode

    def counting(x):
        calls.append(1)
        return real(x)

    predictor.engine.encode = counting
    try:
        for box in ([0, 0, 50_000, 40], [float("nan"), 1, 5, 5], [9, 9, 3, 3]):
            with pytest.raises(PromptError):
                predictor.set_image(PHOTO, box=box)
        assert calls == []
        predictor.set_image(PHOTO, box=[400, 150, 610, 450])
        assert calls == [1]
    finally:
        predictor.engine.encode = real
        predictor.reset_image()


def test_segment_json_of_a_good_photo_still_works(tmp_path):
    """The guards do not refuse a real photo (exit 0, JSON with an outline)."""
    r, rss_mb = _run_cli(["segment", str(PHOTO), "--box", "400,150,610,450", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)[0]["area_px"] > 0
    assert rss_mb < RSS_LIMIT_MB
