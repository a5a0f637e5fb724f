"""The runtime predictor on real weights and real photos (ONNX Runtime, no torch)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from skinscreen.errors import PromptError, SkinscreenError
from skinscreen.evaluate.metrics import dice
from skinscreen.io.image import load_image, load_mask
from skinscreen.preprocess.transforms import box_from_mask, expand_box


def test_sample_photos_dice_with_expert_boxes(predictor, sample_pairs):
    """Tight expert boxes on the 4 shipped ISIC 2017 photos: every mask close to the expert's.
    With the box check (on by default where the litemedsam-boxaug bundle is built) ISIC_0012143
    takes the box-robust decoder's outline, which trims the faint border its annotator included:
    0.68 (0.83 with LiteMedSAM's own mask, --no-box-check); mean 0.882 (0.919)."""
    scores = []
    for img_path, mask_path in sample_pairs:
        truth = load_mask(mask_path)
        predictor.set_image(img_path)
        seg = predictor.predict(box=box_from_mask(truth))
        assert seg.mask.shape == truth.shape and seg.mask.dtype == bool
        assert seg.area_px == int(seg.mask.sum()) > 0
        assert 0.0 <= float(seg.probability.min()) and float(seg.probability.max()) <= 1.0
        scores.append(dice(seg.mask, truth))
    assert np.mean(scores) >= 0.87, scores
    assert sorted(scores)[1] >= 0.9, scores  # all but ISIC_0012143 (seborrheic keratosis)
    assert min(scores) >= 0.65, scores


def test_reprompt_runs_only_the_decoder(predictor, sample_pairs):
    img_path, mask_path = sample_pairs[0]
    truth = load_mask(mask_path)
    calls = {"encode": 0}
    real_encode = predictor.engine.encode

    def counting_encode(x):
        calls["encode"] += 1
        return real_encode(x)

    predictor.engine.encode = counting_encode
    try:
        enc = predictor.set_image(img_path)
        box = box_from_mask(truth)
        a = predictor.predict(box=box)
        b = predictor.predict(box=expand_box(box, 0.05, truth.shape))
        predictor.reset_image()
        predictor.set_encoding(enc)
        c = predictor.predict(box=box)
    finally:
        predictor.engine.encode = real_encode
    assert calls["encode"] == 1
    assert np.array_equal(a.mask, c.mask)
    assert dice(a.mask, b.mask) > 0.9
    assert "encoder" in a.timings_ms and "decoder" in b.timings_ms


def test_polygon_and_svg_path_follow_the_mask(predictor, sample_pairs):
    img_path, mask_path = sample_pairs[1]
    predictor.set_image(img_path)
    seg = predictor.predict(box=box_from_mask(load_mask(mask_path)))
    assert seg.polygon.ndim == 2 and seg.polygon.shape[1] == 2 and len(seg.polygon) >= 8
    assert seg.svg_path.startswith("M ") and seg.svg_path.endswith(" Z")
    assert seg.svg_path.count(" L ") == len(seg.polygon) - 1
    # the polygon's area matches the mask's within 3%
    x, y = seg.polygon[:, 0], seg.polygon[:, 1]
    shoelace = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    assert shoelace == pytest.approx(seg.area_px, rel=0.03)
    d = seg.to_json_dict()
    assert {"box", "polygon", "svg_path", "area_px", "model", "timings_ms"} <= set(d)


def test_exif_rotated_photo_gives_aligned_mask(predictor, sample_pairs):
    """The same photo stored rotated with an EXIF tag: the mask is the rotated mask."""
    img_path, mask_path = sample_pairs[2]
    image = load_image(img_path)
    truth = load_mask(mask_path)
    predictor.set_image(image)
    upright = predictor.predict(box=box_from_mask(truth)).mask

    # Store the photo rotated 90 degrees counter-clockwise with orientation 6 ("rotate 90 CW to view")
    stored = np.rot90(image, k=1)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, format="JPEG", quality=97, exif=exif.tobytes())
    predictor.set_image(buf.getvalue())
    assert predictor.image.shape == image.shape
    seg = predictor.predict(box=box_from_mask(truth))
    assert dice(seg.mask, upright) > 0.95
    assert dice(seg.mask, truth) > 0.85


@pytest.mark.parametrize(
    "box, message",
    [
        ([10, 10, 5, 50], "empty"),
        ([10, 10, 50, 10], "empty"),
        ([float("nan"), 0, 50, 50], "NaN"),
        ([-40, 0, 50, 50], "outside"),
        ([0, 0, 5000, 50], "outside"),
        ([1, 2, 3], "4 numbers"),
        ("abc", "four numbers"),
    ],
)
def test_bad_boxes(predictor, sample_image, box, message):
    predictor.set_image(sample_image)
    with pytest.raises(PromptError, match=message):
        predictor.predict(box=box)


def test_predict_without_image(predictor):
    predictor.reset_image()
    with pytest.raises(SkinscreenError, match="set_image"):
        predictor.predict(box=[0, 0, 10, 10])
