"""The JPEG compression check: quality from the file's quantisation tables or from the pixels,
on the sample photos re-encoded at known qualities (real files in a temp dir), end to end
through ``skinscreen assess`` (JSON + HTML), and on the shared data sets when present."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from skinscreen.assess.quality import (
    JPEG_QUALITY_MIN,
    assess_quality,
    compression_blockiness,
    jpeg_quality_estimate,
    jpeg_quality_from_pixels,
)
from skinscreen.io.image import load_image, load_mask

from .conftest import EXAMPLES, ROOT, shared_dir

PHOTO = EXAMPLES / "images" / "ISIC_0012099.jpg"
MASK = EXAMPLES / "masks" / "ISIC_0012099.png"


def _cv2_jpeg(image: np.ndarray, quality: int) -> bytes:
    """Encode like the robustness suite (OpenCV / libjpeg)."""
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok
    return buf.tobytes()


def _jpeg_warned(q) -> bool:
    return any("JPEG-compressed" in w for w in q.warnings)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_image(PHOTO)


@pytest.fixture(scope="module")
def mask() -> np.ndarray:
    return load_mask(MASK)


@pytest.mark.parametrize("quality", [95, 75, 50, 30, 20, 10])
def test_file_estimate_recovers_the_encoder_quality(photo, quality):
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="JPEG", quality=quality)
    assert jpeg_quality_estimate(buf.getvalue()) == pytest.approx(quality, abs=1.0)


def test_file_estimate_is_none_for_png_and_garbage(photo, tmp_path):
    png = tmp_path / "p.png"
    Image.fromarray(photo).save(png)
    assert jpeg_quality_estimate(png) is None
    assert jpeg_quality_estimate(b"not an image") is None
    # the sample photos (ISIC, saved at quality 92): well above the threshold
    assert jpeg_quality_estimate(PHOTO) == pytest.approx(92.0, abs=0.5)


def test_pixel_estimate_finds_coarse_quantisation_only(photo):
    assert jpeg_quality_from_pixels(photo) is None  # the original: no coarse quantisation
    for quality in (50, 30, 20, 10):
        dec = load_image(_cv2_jpeg(photo, quality))
        assert jpeg_quality_from_pixels(dec) == pytest.approx(quality, abs=1.0), quality
    # cropped off the 8 px grid and flipped: the grid phase is found, not assumed
    dec = load_image(_cv2_jpeg(photo, 10))[3:-5, 5:][:, ::-1]
    assert jpeg_quality_from_pixels(np.ascontiguousarray(dec)) == pytest.approx(10, abs=1.0)
    # PNG-like smooth synthetic photo without quantisation
    yy, xx = np.mgrid[0:256, 0:256]
    ramp = np.dstack([(xx + yy) / 2, xx, yy]).astype(np.uint8)
    assert jpeg_quality_from_pixels(ramp) is None


def test_blockiness_rises_with_compression(photo):
    b = [compression_blockiness(load_image(_cv2_jpeg(photo, q))) for q in (95, 50, 20, 10)]
    assert b == sorted(b) and b[-1] > 2 * b[0], b
    assert compression_blockiness(np.full((64, 64, 3), 128, np.uint8)) == 1.0


def test_q10_copy_warns_and_the_original_does_not(photo, mask, tmp_path):
    """An examples/ photo re-encoded at quality 10 in a temp dir warns (file tables and pixels);
    the original file does not."""
    q10 = tmp_path / "q10.jpg"
    q10.write_bytes(_cv2_jpeg(photo, 10))
    est = jpeg_quality_estimate(q10)
    assert est == pytest.approx(10, abs=1.0)
    r = assess_quality(load_image(q10), mask, jpeg_quality=est)
    assert _jpeg_warned(r) and r.jpeg_quality_source == "file", r.warnings
    assert any("original photo" in w for w in r.warnings)  # says how to fix it
    r_pix = assess_quality(load_image(q10), mask)  # decoded array only
    assert _jpeg_warned(r_pix) and r_pix.jpeg_quality_source == "pixels"
    orig = assess_quality(photo, mask, jpeg_quality=jpeg_quality_estimate(PHOTO))
    assert not _jpeg_warned(orig) and orig.jpeg_quality_estimate > 90
    assert orig.ok, orig.warnings
    orig_pix = assess_quality(photo, mask)
    assert orig_pix.jpeg_quality_estimate is None and orig_pix.jpeg_quality_source is None


def test_sample_photos_threshold_separates_20_from_30(sample_pairs):
    for img, _ in sample_pairs:
        photo = load_image(img)
        assert jpeg_quality_from_pixels(photo) is None
        q20 = jpeg_quality_from_pixels(load_image(_cv2_jpeg(photo, 20)))
        q30 = jpeg_quality_from_pixels(load_image(_cv2_jpeg(photo, 30)))
        assert q20 is not None and q20 <= JPEG_QUALITY_MIN, (img.name, q20)
        assert q30 is not None and q30 > JPEG_QUALITY_MIN, (img.name, q30)


def test_assess_cli_reports_compression_in_json_and_html(tmp_path, photo):
    q10 = tmp_path / "photo_q10.jpg"
    q10.write_bytes(_cv2_jpeg(photo, 10))
    out = tmp_path / "out"
    results = {}
    for img in (PHOTO, q10):
        r = subprocess.run(
            [sys.executable, "-m", "skinscreen", "assess", str(img), "--mask", str(MASK)]
            + ["--json", "--out", str(out)],
            capture_output=True, text=True, cwd=ROOT, timeout=300,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        results[img.stem] = json.loads(r.stdout)
    orig, low = results[PHOTO.stem]["quality"], results[q10.stem]["quality"]
    assert orig["jpeg_quality_source"] == "file" and orig["jpeg_quality_estimate"] > 90
    assert low["jpeg_quality_source"] == "file"
    assert low["jpeg_quality_estimate"] == pytest.approx(10, abs=1.0)
    assert low["compression_blockiness"] > orig["compression_blockiness"]
    assert any("JPEG-compressed" in w for w in results[q10.stem]["warnings"])
    assert not any("JPEG-compressed" in w for w in results[PHOTO.stem]["warnings"])
    page = (out / f"{q10.stem}.html").read_text()
    assert "Compression" in page and "JPEG quality about 10" in page


@pytest.mark.parametrize("name", ["lesions-train", "lesions-dev"])
def test_originals_almost_never_warn(name):
    """False-warning rate on the original photos (first 200 of each set, both estimates)."""
    d = shared_dir(name)
    files = sorted((d / "images").glob("*.jpg"))[:200]
    warned = 0
    for f in files:
        q_file = jpeg_quality_estimate(f)
        q_pix = jpeg_quality_from_pixels(load_image(f))
        warned += any(q is not None and q <= JPEG_QUALITY_MIN for q in (q_file, q_pix))
    assert warned / len(files) <= 0.01, (name, warned, len(files))


def test_train_reencodes_at_20_warn_from_pixels():
    """On lesions-train (where the threshold was chosen), quality-20 copies are flagged from the
    decoded pixels alone and quality-30 copies are not."""
    d = shared_dir("lesions-train")
    files = sorted((d / "images").glob("*.jpg"))[::25]
    flagged = {20: 0, 30: 0}
    for f in files:
        photo = load_image(f)
        for quality in flagged:
            q = jpeg_quality_from_pixels(load_image(_cv2_jpeg(photo, quality)))
            flagged[quality] += q is not None and q <= JPEG_QUALITY_MIN
    assert flagged[20] / len(files) >= 0.97, flagged
    assert flagged[30] == 0, flagged


def test_web_bridge_reads_the_uploaded_file_quality(photo, mask):
    """The web API's assessment bridge takes the quality from the uploaded bytes' tables."""
    from skinscreen.web import assessment

    data = _cv2_jpeg(photo, 10)
    assert assessment.jpeg_quality(data) == pytest.approx(10, abs=1.0)
    assert assessment.jpeg_quality(PHOTO.read_bytes()) == pytest.approx(92, abs=0.5)
    _, quality, note = assessment.run(
        load_image(data), mask, jpeg_quality=assessment.jpeg_quality(data)
    )
    assert note == "ok" and quality["jpeg_quality_source"] == "file"
    assert any("JPEG-compressed" in w for w in quality["warnings"])
