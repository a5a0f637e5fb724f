"""Decoder fine-tuning: patient-grouped k-fold splits and a tiny real CV run."""

from __future__ import annotations

from pathlib import Path

import pytest

from skinscreen.train.finetune import group_of, grouped_folds

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHARED = ROOT.parent / "shared" / "data"


def test_group_of_pad_ids_is_the_patient():
    assert group_of("PAD_PAT_1020_111_593") == "PAD_PAT_1020"
    assert group_of("PAD_PAT_1020_112_600") == "PAD_PAT_1020"
    assert group_of("ISIC_0012099") == "ISIC_0012099"
    assert group_of("WL_dermis_melanoma_AMM1") == "WL_dermis_melanoma_AMM1"


def _check_folds(ids: list[str], k: int) -> None:
    folds = grouped_folds(ids, k, seed=0)
    assert len(folds) == k
    seen: list[str] = []
    for train, val in folds:
        assert set(train).isdisjoint(val)  # no photo in both parts
        assert {group_of(i) for i in train}.isdisjoint({group_of(i) for i in val})  # nor patient
        assert sorted(train + val) == sorted(ids)
        seen += val
    assert sorted(seen) == sorted(ids)  # every photo validated exactly once
    sizes = [len(v) for _, v in folds]
    assert max(sizes) - min(sizes) <= max(
        len([i for i in ids if group_of(i) == g]) for g in map(group_of, ids)
    )
    assert grouped_folds(ids, k, seed=0) == folds  # deterministic


def test_grouped_folds_keep_patients_together():
    ids = [
        f"PAD_PAT_{p}_{lesion}_{img}"
        for p in range(12)
        for lesion in range(2)
        for img in range(p % 3 + 1)
    ]
    ids += [f"ISIC_{i:07d}" for i in range(20)]
    _check_folds(ids, 5)
    with pytest.raises(ValueError):
        grouped_folds(["PAD_PAT_1_1_1", "PAD_PAT_1_2_2"], 2)  # one patient cannot make 2 folds


def test_grouped_folds_on_the_training_set():
    images = SHARED / "lesions-train" / "images"
    if not images.is_dir():
        pytest.skip(f"{images} is absent (only available in the development workplace)")
    ids = sorted(p.stem for p in images.iterdir())
    assert any(i.startswith("PAD_PAT_") for i in ids)
    _check_folds(ids, 5)


def test_tiny_cross_validation_on_sample_photos(tmp_path):
    """2-fold CV on the 4 sample photos, 2 steps per fold: real Dice figures for base and tuned."""
    torch = pytest.importorskip("torch")
    from skinscreen.evaluate.dataset import find_pairs
    from skinscreen.train.cache import build_cache
    from skinscreen.train.finetune import cached_examples, cross_validate
    from skinscreen.train.teacher import load_teacher

    torch.set_num_threads(2)
    teacher = load_teacher("litemedsam", use_onnx_bundle=False)
    pairs = find_pairs(EXAMPLES / "images", EXAMPLES / "masks")
    root = tmp_path / "litemedsam-seed0"
    build_cache(teacher, [p.image for p in pairs], root, views=1, progress=False)
    examples = cached_examples(root, {p.id: p.mask for p in pairs}, views=1)
    assert len(examples) == 4
    res = cross_validate(
        teacher.model, teacher.spec, examples, k=2, steps=2, lr=1e-5, progress=False
    )
    assert [f["n_val"] for f in res["folds"]] == [2, 2]
    assert res["base_gt-box_mean"] > 0.8  # LiteMedSAM on the ISIC samples with tight boxes
    assert abs(res["gain_gt-box_mean"]) < 0.05  # two tiny steps barely move the decoder
    assert isinstance(res["beats_base"], bool)
