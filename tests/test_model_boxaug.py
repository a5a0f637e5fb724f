"""litemedsam-boxaug: LiteMedSAM with its prompt encoder and mask decoder fine-tuned on loose and
shifted boxes (real weights, real sample photos)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import skinscreen  # noqa: E402
from skinscreen.errors import SkinscreenError  # noqa: E402
from skinscreen.io.image import load_image, load_mask  # noqa: E402
from skinscreen.preprocess.transforms import box_from_mask, expand_box  # noqa: E402
from skinscreen.spec import get_spec  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def refs():
    from skinscreen.export.reference import TorchReference

    base = TorchReference(get_spec("litemedsam"))
    tuned = TorchReference(get_spec("litemedsam-boxaug"))
    return base, tuned


def test_boxaug_shares_the_encoder_and_replaces_the_decoder(refs):
    base, tuned = refs
    a, b = base.model.state_dict(), tuned.model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("image_encoder."))
    changed = [k for k in a if k.startswith("mask_decoder.") and not torch.equal(a[k], b[k])]
    assert len(changed) > 50
    spec = get_spec("litemedsam-boxaug")
    assert not spec.default and spec.extra["localiser"] == "litemedsam"
    assert "non-commercial" in spec.extra["decoder_weights"]["licence"]


def test_boxaug_tampered_weights_are_refused(tmp_path):
    from skinscreen.export.checkpoint import read_override

    entry = dict(get_spec("litemedsam-boxaug").extra["decoder_weights"])
    src = Path(skinscreen.__file__).parent / "assets" / Path(entry["path"]).name
    bad = tmp_path / "decoder.safetensors"
    shutil.copy(src, bad)
    data = bytearray(bad.read_bytes())
    data[-100] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(SkinscreenError, match="sha256"):
        read_override({**entry, "path": str(bad)}, {})


def _dice(m: np.ndarray, g: np.ndarray) -> float:
    return 2 * float((m & g).sum()) / max(float(m.sum() + g.sum()), 1.0)


def test_boxaug_keeps_loose_boxes_on_the_lesion(refs):
    """A box 25% too large on every side (+ the runtime's 5% margin): LiteMedSAM takes in the
    surrounding skin, the box-augmented decoder much less. Measured on the 4 examples: mean Dice
    0.721 -> 0.892; tight boxes 0.919 -> 0.879 (the cost on these ISIC 2017 photos)."""
    base, tuned = refs
    scores = {"base": {"tight": [], "loose": []}, "tuned": {"tight": [], "loose": []}}
    for p in sorted((EXAMPLES / "images").glob("*.jpg")):
        gt = load_mask(EXAMPLES / "masks" / f"{p.stem}.png")
        base.set_image(load_image(p))
        tuned.embedding, tuned.transform = base.embedding, base.transform
        tight = box_from_mask(gt)
        for cond, grow in (("tight", 0.0), ("loose", 0.25)):
            box = expand_box(expand_box(tight, grow, gt.shape), 0.05, gt.shape)
            scores["base"][cond].append(_dice(base.predict_mask(box), gt))
            scores["tuned"][cond].append(_dice(tuned.predict_mask(box), gt))
    mean = {m: {c: float(np.mean(v)) for c, v in s.items()} for m, s in scores.items()}
    assert mean["tuned"]["loose"] > mean["base"]["loose"] + 0.10
    assert mean["tuned"]["loose"] > 0.85
    assert mean["tuned"]["tight"] > 0.85
