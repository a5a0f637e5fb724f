"""The robustness suite end to end with the real model, and ``evaluate --robustness`` / ``--prompt auto``."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from skinscreen.cli.main import main
from skinscreen.evaluate import perturbations as P
from skinscreen.evaluate import robustness as R
from skinscreen.evaluate.dataset import find_pairs

from .conftest import EXAMPLES


def run_cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as e:
        main(args)
    return e.value.code


def test_suite_on_one_sample_photo(predictor):
    pairs = find_pairs(EXAMPLES / "images", EXAMPLES / "masks")[:1]
    conds = P.select("flip-h,jitter-10,loose-10")
    res = R.run_robustness(predictor, pairs, conds, colour_constancy=False)
    assert not res.failures
    by = {r["condition"]: r for r in res.rows}
    assert set(by) == {"original", "flip-h", "jitter-10", "loose-10"}
    assert by["original"]["dice"] > 0.9  # ISIC_0012099 with its tight box: 0.935 measured
    assert by["original"]["skin_tone"] == "very light" and by["original"]["source"] == "ISIC"
    for r in res.rows:
        assert r["dice_change"] == pytest.approx(r["dice"] - by["original"]["dice"], abs=1e-4)
        assert r["warned"] is not None  # skinscreen.assess quality checks ran


def test_suite_margin_grows_every_prompt_box(predictor):
    """--margin: the prompt box, after its loosening, is grown as the predictor grows a drawn
    box; a 10%-loose box plus a 5% margin equals the tight box grown by 10% then 5%."""
    pairs = find_pairs(EXAMPLES / "images", EXAMPLES / "masks")[:1]
    conds = P.select("loose-10")
    raw = R.run_robustness(predictor, pairs, conds, colour_constancy=False)
    grown = R.run_robustness(predictor, pairs, conds, colour_constancy=False, margin=0.05)
    assert {r["box_margin"] for r in raw.rows} == {0.0}
    assert {r["box_margin"] for r in grown.rows} == {0.05}
    md = R.build_report(grown, conds, title="t", model="litemedsam")["robustness.md"].decode()
    assert "grown by 0.05 per side" in md
    from skinscreen.io.image import load_mask
    from skinscreen.preprocess.transforms import box_from_mask, expand_box

    truth = load_mask(pairs[0].mask)
    box = expand_box(expand_box(box_from_mask(truth), 0.10, truth.shape), 0.05, truth.shape)
    predictor.set_image(pairs[0].image)
    seg = predictor.predict(box=box, box_margin=0.0)
    d = 2 * float((seg.mask & truth).sum()) / float(seg.mask.sum() + truth.sum())
    row = next(r for r in grown.rows if r["condition"] == "loose-10")
    assert row["dice"] == pytest.approx(d, abs=1e-4)


def test_suite_over_worker_processes_gives_the_serial_rows(predictor):
    """--workers: each worker builds the caller's predictor; rows come back in photo order with
    the serial run's figures (thread counts differ, so up to float noise)."""
    from skinscreen.evaluate.parallel import PredictorRecipe, run_robustness_workers

    pairs = find_pairs(EXAMPLES / "images", EXAMPLES / "masks")[:2]
    conds = "flip-h,jitter-10"
    serial = R.run_robustness(predictor, pairs, P.select(conds), colour_constancy=False)
    spread = run_robustness_workers(
        predictor, pairs, conds, workers=2, threads=1, colour_constancy=False
    )
    assert not spread.failures and len(spread.rows) == len(serial.rows) == 6
    for a, b in zip(serial.rows, spread.rows, strict=True):
        assert (a["id"], a["condition"]) == (b["id"], b["condition"])
        assert b["dice"] == pytest.approx(a["dice"], abs=2e-3)
        assert b["quality_warnings"] == a["quality_warnings"]
    recipe = PredictorRecipe.of(predictor, 1)
    assert recipe.model == "litemedsam" and recipe.box_check == (predictor.box_checker is not None)


def plain_skin_pair(tmp_path):
    """One photo of plain skin (automatic mode finds nothing) with an expert mask that outlines a
    lesion anyway: the pair list of ``tmp_path/images`` and ``tmp_path/masks``."""
    from PIL import Image

    from .test_auto_classical import skin_photo

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    plain = skin_photo(seed=5)
    Image.fromarray(plain).save(tmp_path / "images" / "plain.png")
    truth = np.zeros(plain.shape[:2], np.uint8)
    truth[200:260, 300:380] = 255
    Image.fromarray(truth).save(tmp_path / "masks" / "plain.png")
    return find_pairs(tmp_path / "images", tmp_path / "masks")


def test_suite_auto_no_lesion_is_a_warned_row_not_a_dropped_photo(predictor, tmp_path):
    """--prompt auto on plain skin: automatic mode finds nothing in any version of the photo; each
    condition still gives a row (empty outline, Dice 0 vs the expert's lesion, warned), so one
    perturbation without a lesion found cannot drop the photo from every condition."""
    pairs = plain_skin_pair(tmp_path)
    conds = P.select("flip-h,gamma-0.6")
    res = R.run_robustness(predictor, pairs, conds, prompt="auto", colour_constancy=False)
    assert not res.failures
    assert {r["condition"] for r in res.rows} == {"original", "flip-h", "gamma-0.6"}
    for r in res.rows:
        assert r["dice"] == 0.0 and r["jaccard"] == 0.0 and r["iou_prediction"] is None
        assert r["quality_warnings"] == R.NO_LESION_WARNING and r["warned"] is True


def test_evaluate_auto_scores_no_lesion_found_as_zero(predictor, tmp_path):
    """evaluate --prompt auto: a photo where automatic mode finds nothing (the expert outlined a
    lesion) counts as an empty outline, Jaccard 0, as the ISIC challenge scores a missing mask;
    it is not left out of the means."""
    from skinscreen.evaluate.dataset import evaluate_pairs

    res = evaluate_pairs(predictor, plain_skin_pair(tmp_path), "auto")
    assert not res.failures
    (row,) = res.rows
    assert row["box_source"] == "none" and row["dice"] == 0.0 and row["threshold_jaccard"] == 0.0
    summary = res.summary("auto", "litemedsam")
    assert summary["n"] == 1 and summary["n_failed"] == 0 and summary["n_no_lesion_found"] == 1
    assert summary["threshold_jaccard"] == 0.0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_evaluate_robustness_cli_writes_report(tmp_path, capsys, workers):
    out = tmp_path / "rob"
    code = run_cli(
        [
            "evaluate",
            "--images",
            str(EXAMPLES / "images"),
            "--masks",
            str(EXAMPLES / "masks"),
            "--robustness",
            "--conditions",
            "jitter-20",
            "--limit",
            "1",
            "--out",
            str(out),
            "--json",
            "--workers",
            workers,
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 1 and summary["n_failed"] == 0
    conds = {(r["condition"], r["colour_constancy"]) for r in summary["by_condition"]}
    assert conds == {("original", False), ("original", True), ("jitter-20", False)}
    for name in ("robustness.md", "robustness_per_image.csv", "robustness_summary.csv"):
        assert (out / name).stat().st_size > 100
    assert (out / "dice_by_condition.png").read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader((out / "robustness_per_image.csv").open()))
    assert len(rows) == 3


def test_evaluate_workers_needs_robustness(capsys):
    code = run_cli(
        ["evaluate", "--images", str(EXAMPLES / "images"), "--masks", str(EXAMPLES / "masks")]
        + ["--workers", "2"]
    )
    assert code == 2 and "--workers is for --robustness" in capsys.readouterr().err


def test_evaluate_robustness_rejects_unknown_condition(tmp_path, capsys):
    code = run_cli(
        [
            "evaluate",
            "--images",
            str(EXAMPLES / "images"),
            "--masks",
            str(EXAMPLES / "masks"),
            "--robustness",
            "--conditions",
            "sepia",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert code == 1
    assert "unknown condition" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_evaluate_prompt_auto_json_has_the_box_mode_keys(capsys):
    summaries = {}
    for prompt in ("gt-box", "auto"):
        code = run_cli(
            [
                "evaluate",
                "--images",
                str(EXAMPLES / "images"),
                "--masks",
                str(EXAMPLES / "masks"),
                "--prompt",
                prompt,
                "--limit",
                "2",
                "--json",
            ]
        )
        assert code == 0
        summaries[prompt] = json.loads(capsys.readouterr().out)
    # automatic mode adds its abstention keys (outline-quality estimate) beside the others
    extra = {"coverage", "n_answered", "threshold_jaccard_answered", "dice_answered"}
    assert set(summaries["auto"]) == set(summaries["gt-box"]) | extra | {"jaccard_answered"}
    assert summaries["auto"]["prompt"] == "auto" and summaries["auto"]["n"] == 2
    # ISIC_0012099 and ISIC_0012143 with the learned localiser: 0.945 and 0.612 (mean 0.78)
    assert summaries["auto"]["dice"] > 0.74
