"""Reading photos the way phones and galleries produce them, and refusing bad input clearly."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from skinscreen.errors import ImageError
from skinscreen.io.image import MAX_PIXELS, load_image, load_mask, save_mask_png


def _jpeg_bytes(a: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=95, **kw)
    return buf.getvalue()


def test_exif_orientation_applied(sample_image):
    """A photo stored landscape with EXIF orientation 6 (rotate 90 CW) loads portrait, upright."""
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _jpeg_bytes(sample_image, exif=exif.tobytes())
    out = load_image(data)
    h, w = sample_image.shape[:2]
    assert out.shape == (w, h, 3)
    expected = np.rot90(sample_image, k=-1)  # 90 degrees clockwise
    assert np.abs(out.astype(int) - expected.astype(int)).mean() < 4  # JPEG noise only


def test_rgba_grayscale_palette_and_16bit(tmp_path, sample_image):
    small = sample_image[:64, :80]
    rgba = np.dstack([small, np.full(small.shape[:2], 255, np.uint8)])
    assert np.array_equal(load_image(Image.fromarray(rgba)), small)
    gray = load_image(Image.fromarray(small[..., 0]))
    assert gray.shape == (64, 80, 3) and np.array_equal(gray[..., 0], small[..., 0])
    pal = Image.fromarray(small).convert("P", palette=Image.Palette.ADAPTIVE)
    assert load_image(pal).shape == (64, 80, 3)
    g16 = (small[..., 1].astype(np.uint16) * 257).astype(np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(g16).save(p)
    assert Image.open(p).mode.startswith("I")
    out16 = load_image(p)
    assert np.abs(out16[..., 0].astype(int) - small[..., 1].astype(int)).max() <= 1
    # transparent pixels are composited on white
    rgba[:10, :10, 3] = 0
    assert (load_image(rgba)[:10, :10] == 255).all()


def test_array_inputs(sample_image):
    assert load_image(sample_image).shape == sample_image.shape
    f = sample_image.astype(np.float32) / 255.0
    assert np.abs(load_image(f).astype(int) - sample_image).max() <= 1
    with pytest.raises(ImageError, match="NaN"):
        load_image(np.full((32, 32, 3), np.nan, np.float32))
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros((32, 32, 5), np.uint8))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("this is not a photo\n"), "not an image"),
    ],
)
def test_bad_files(tmp_path, make, message):
    p = tmp_path / "photo.jpg"
    make(p)
    with pytest.raises(ImageError, match=message):
        load_image(p)


def test_truncated_jpeg(tmp_path, sample_image):
    data = _jpeg_bytes(sample_image)
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(p)


def test_tiny_image():
    with pytest.raises(ImageError, match="too small"):
        load_image(Image.new("RGB", (1, 1)))


def _png_header_only(w: int, h: int) -> bytes:
    """A PNG that declares w x h pixels but carries almost no data (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_before_decoding():
    side = int((MAX_PIXELS * 1.5) ** 0.5)
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(_png_header_only(side, side))


def test_mask_roundtrip(tmp_path):
    m = np.zeros((40, 50), bool)
    m[10:20, 5:30] = True
    p = tmp_path / "m.png"
    save_mask_png(m, p)
    with Image.open(p) as im:
        assert im.mode == "L" and set(np.unique(np.asarray(im))) == {0, 255}
    assert np.array_equal(load_mask(p), m)
