"""The outline-quality estimate: the shipped asset, its place in segment/assess JSON, the
automatic mode's abstention, and evaluate's coverage keys (sample photos in examples/)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from skinscreen.errors import SkinscreenError, UnreliableOutlineError
from skinscreen.evaluate.quality import (
    expected_calibration_error,
    failure_auroc,
    risk_coverage,
)
from skinscreen.io.image import load_mask
from skinscreen.outline_quality import FEATURES, load_quality_model, outline_signals
from skinscreen.outline_quality.score import QualityModel, _asset, read_quality_model
from skinscreen.preprocess.transforms import box_from_mask

from .conftest import EXAMPLES, ROOT

SKINSCREEN = [sys.executable, "-m", "skinscreen"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SKINSCREEN, *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def test_asset_loads_and_verifies_its_hash(tmp_path):
    qm = load_quality_model("litemedsam")
    assert qm is not None and tuple(qm.info["features"]) == FEATURES
    meta = json.loads(_asset("litemedsam-quality.meta.json").read_text())
    assert meta["sha256"] == qm.sha256 and meta["data"]["set"] == "lesions-train"
    assert 0.0 < qm.threshold < 1.0
    # a changed byte is refused, naming both hashes
    bad = tmp_path / "q.json"
    bad.write_text(_asset("litemedsam-quality.json").read_text().replace("}", " }", 1))
    shutil.copy(_asset("litemedsam-quality.meta.json"), tmp_path / "q.meta.json")
    with pytest.raises(SkinscreenError, match="sha256"):
        read_quality_model(bad, tmp_path / "q.meta.json")
    # monotone where it should be: a confident, stable, agreeing outline beats a shaky one
    good = dict(qm.info["medians"], iou_prediction=0.95, stability=0.95, check_dice=0.97)
    shaky = dict(good, iou_prediction=0.5, stability=0.4, check_dice=0.4, localiser_dice=0.2)
    (jg, pg), (js, ps) = qm.predict(good), qm.predict(shaky)
    assert jg > js and pg < ps
    assert 0.0 <= ps <= 1.0 and 0.0 <= js <= 1.0


def test_drawn_box_outline_carries_the_estimate(predictor, sample_pairs):
    img, mask_path = sample_pairs[0]
    truth = load_mask(mask_path)
    predictor.set_image(img)
    seg = predictor.predict(box=box_from_mask(truth))
    q = seg.to_json_dict()["outline_quality"]
    assert set(q) >= {"predicted_jaccard", "p_failure", "check_outline", "drivers", "signals"}
    assert set(q["signals"]) == set(FEATURES) and q["signals"]["is_auto"] == 0.0
    assert isinstance(q["check_outline"], bool)
    # a good expert-box outline: no alarm, and the predicted Jaccard near the measured one
    assert not q["check_outline"] and q["predicted_jaccard"] > 0.7
    sig = outline_signals(predictor, seg)
    assert all(np.isfinite(v) for v in sig.values())
    predictor.reset_image()


def test_abstention_and_candidate_choice(predictor, sample_pairs):
    """At an operating point that flags everything, automatic mode answers nothing: the
    error says to draw a box and keeps the outline it would have given."""
    qm = predictor.quality_model
    strict = QualityModel(dict(qm.info, threshold=0.0), qm.sha256)
    predictor.set_image(sample_pairs[0][0])
    try:
        predictor.quality_model = strict
        with pytest.raises(UnreliableOutlineError, match="no reliable outline, please draw a box"):
            predictor.predict(abstain=True)
        try:
            predictor.predict(abstain=True)
        except UnreliableOutlineError as e:
            assert e.segmentation is not None and e.segmentation.mask.any()
        seg = predictor.predict(abstain=False)  # the tracker's way: answer, flagged
        assert seg.outline_quality["check_outline"] is True
        assert seg.auto["chosen_by"] == "outline_quality"
        boxes = [c["box"] for c in seg.auto["candidates"]]
        assert [round(float(v), 2) for v in seg.box] in boxes
        # drawn boxes are never refused, only flagged
        seg = predictor.predict(box=[100, 100, 400, 400])
        assert seg.outline_quality["check_outline"] is True
    finally:
        predictor.quality_model = qm
        predictor.reset_image()


def test_segment_and_assess_json_have_outline_quality(tmp_path, sample_pairs):
    img, mask_path = sample_pairs[0]
    box = ",".join(f"{v:g}" for v in box_from_mask(load_mask(mask_path)))
    r = run("segment", str(img), "--box", box, "--json")
    assert r.returncode == 0, r.stderr
    q = json.loads(r.stdout)[0]["outline_quality"]
    assert 0.0 <= q["p_failure"] <= 1.0 and 0.0 <= q["predicted_jaccard"] <= 1.0
    r = run("assess", str(img), "--box", box, "--json", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    rep = rep[0] if isinstance(rep, list) else rep
    assert rep["schema_version"] == "1.4"
    assert set(rep["outline_quality"]) >= {"predicted_jaccard", "p_failure", "check_outline"}
    html = next(tmp_path.glob("*.html")).read_text()
    assert "Outline check" in html


def test_evaluate_auto_reports_coverage_and_risk_coverage(tmp_path):
    r = run(
        "evaluate",
        "--images",
        str(EXAMPLES / "images"),
        "--masks",
        str(EXAMPLES / "masks"),
        "--prompt",
        "auto",
        "--json",
        "--out",
        str(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    for k in ("dice", "threshold_jaccard", "failure_rate"):  # the existing keys stay
        assert k in s
    for k in ("coverage", "threshold_jaccard_answered", "dice_answered", "failure_auroc"):
        assert k in s
    assert 0.0 <= s["coverage"] <= 1.0 and s["n_answered"] == round(s["coverage"] * s["n"])
    if s["n_answered"]:
        assert s["threshold_jaccard_answered"] >= 0.0
    rows = (tmp_path / "per_image.csv").read_text().splitlines()
    assert "p_failure" in rows[0] and "answered" in rows[0]
    png = (tmp_path / "risk_coverage.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_of_the_estimate():
    p = np.array([0.1, 0.2, 0.8, 0.9])
    failed = np.array([False, False, True, True])
    assert failure_auroc(p, failed) == 1.0
    assert failure_auroc(p, ~failed) == 0.0
    assert failure_auroc(p, np.zeros(4, bool)) is None
    assert expected_calibration_error(np.array([0.0, 1.0]), np.array([False, True])) == 0.0
    cov, tj = risk_coverage(p, np.array([0.9, 0.8, 0.3, 0.2]))
    assert cov.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert tj[0] == pytest.approx(0.9) and tj[-1] == pytest.approx(1.7 / 4)


def test_stream_frames_carry_the_estimate(predictor):
    from skinscreen.stream.bench import initial_box
    from skinscreen.stream.synthetic import clip_from_files
    from skinscreen.stream.tracker import LesionTracker

    c = clip_from_files(
        EXAMPLES / "images" / "ISIC_0012206.jpg", EXAMPLES / "masks" / "ISIC_0012206.png", "static"
    )
    tracker = LesionTracker(predictor, box=initial_box(c))
    frames = [tracker.feed(f, timestamp_s=i / c.fps) for i, f in enumerate(c.frames[:4])]
    for r in frames:
        q = r.to_json_dict()["outline_quality"]
        assert set(q) == {"predicted_jaccard", "p_failure", "check_outline"}
        assert 0.0 <= q["p_failure"] <= 1.0
