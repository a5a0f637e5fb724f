"""``skinscreen assess`` end to end: real model, real photos, outputs, batch CSV, exit codes."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from skinscreen.io.image import load_mask
from skinscreen.preprocess.transforms import box_from_mask

from .conftest import EXAMPLES, ROOT

SKINSCREEN = [sys.executable, "-m", "skinscreen"]
KEYS = ("area_mm2", "diameter_max_mm", "perimeter_mm", "asymmetry", "border", "colors")
KEYS += ("ita_deg", "skin_tone", "quality", "warnings", "schema_version", "disclaimer")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SKINSCREEN, *args], capture_output=True, text=True, cwd=ROOT, timeout=600
    )


def box_arg(mask_path: Path) -> str:
    return ",".join(f"{v:g}" for v in box_from_mask(load_mask(mask_path)))


def test_assess_one_photo_with_the_model(tmp_path, sample_pairs):
    img, mask = sample_pairs[0]
    out = tmp_path / "out"
    r = run(
        "assess", str(img), "--box", box_arg(mask), "--mm-per-pixel", "0.02", "--out", str(out),
        "--json", "--threads", "2",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for key in KEYS:
        assert key in d, key
    assert d["segmentation"]["source"] == "model" and d["segmentation"]["box_source"] == "user"
    assert d["scale"] == {"mm_per_pixel": 0.02, "source": "user"}
    assert d["diameter_max_mm"] == pytest.approx(d["diameter_max_px"] * 0.02, rel=1e-3)
    # the model's outline agrees with the expert's on this photo
    expert = load_mask(mask)
    assert d["area_px"] == pytest.approx(int(expert.sum()), rel=0.25)
    stem = img.stem
    names = {p.name for p in out.iterdir()}
    expected = {f"{stem}.json", f"{stem}.html", f"{stem}_mask.png"}
    expected |= {f"{stem}_{n}.png" for n in ("overlay", "axes", "heatmap", "colors")}
    assert names == expected
    assert json.loads((out / f"{stem}.json").read_text()) == d
    assert Image.open(out / f"{stem}_mask.png").size == (expert.shape[1], expert.shape[0])
    page = (out / f"{stem}.html").read_text()
    assert d["disclaimer"] in page and "data:image/jpeg;base64," in page


def test_assess_with_a_given_mask_and_dermoscope_preset(sample_pairs):
    img, mask = sample_pairs[1]
    r = run("assess", str(img), "--mask", str(mask), "--dermoscope", "fov20", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["segmentation"]["source"] == "mask"
    assert d["area_px"] == int(load_mask(mask).sum())
    assert d["scale"]["source"] == "dermoscope:fov20"
    assert d["scale"]["mm_per_pixel"] == pytest.approx(20 / 1024)


def test_batch_writes_reports_and_csv_and_names_failures(tmp_path, sample_pairs):
    photos = tmp_path / "photos"
    photos.mkdir()
    for img, _ in sample_pairs[:2]:
        shutil.copy(img, photos / img.name)
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    r = run("assess", str(photos), "--mask", str(EXAMPLES / "masks"), "--out", str(out))
    assert r.returncode == 1
    assert "broken.jpg" in r.stderr and "1 item(s) failed" in r.stderr
    rows = list(csv.DictReader((out / "features.csv").open()))
    assert [row["image"] for row in rows] == [img.name for img, _ in sample_pairs[:2]]
    assert {"diameter_max_px", "asymmetric_axes", "colors", "ita_deg"} <= set(rows[0])
    for img, _ in sample_pairs[:2]:
        assert (out / f"{img.stem}.html").exists()
    assert not any(p.name.startswith("broken") for p in out.iterdir())


def test_bad_usage_is_refused_with_nothing_written(tmp_path, sample_pairs):
    img, mask = sample_pairs[0]
    out = tmp_path / "out"
    r = run("assess", str(img), "--mask", str(mask), "--mm-per-pixel", "-1", "--out", str(out))
    assert r.returncode != 0 and "mm-per-pixel" in r.stderr
    r = run("assess", str(img), "--mask", str(mask), "--dermoscope", "nope", "--out", str(out))
    assert r.returncode != 0 and "fov20" in r.stderr
    r = run("assess", str(img), "--box", "1,2,3", "--out", str(out))
    assert r.returncode != 0 and "four numbers" in r.stderr
    wrong = tmp_path / "wrong.png"
    Image.new("L", (20, 20), 255).save(wrong)  # a mask, but not of the photo's size
    r = run("assess", str(img), "--mask", str(wrong), "--out", str(out))
    assert r.returncode == 1 and "size" in r.stderr
    empty = tmp_path / "empty.png"
    Image.new("L", Image.open(img).size, 0).save(empty)
    r = run("assess", str(img), "--mask", str(empty), "--out", str(out))
    assert r.returncode == 1 and "empty" in r.stderr
    assert not out.exists() or not any(out.iterdir())
