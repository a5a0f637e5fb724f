"""A hostile-input corpus generated on the fly (small files, no downloads): truncated and corrupt
JPEG/PNG/TIFF/WebP/BMP, metadata and decompression bombs, NaN/inf float TIFFs, formats outside the
allowlist, and non-images. ``cases()`` -> ``[(name, bytes)]``; every case must be refused with an
:class:`~skinscreen.errors.ImageError` (tests/test_hostile_inputs.py)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _encode(arr: np.ndarray | Image.Image, fmt: str, **kw) -> bytes:
    im = arr if isinstance(arr, Image.Image) else Image.fromarray(arr)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _photo(h: int = 96, w: int = 128) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 2 % 256, yy * 2 % 256, (xx + yy) % 256], axis=2)
    return (base + rng.integers(0, 30, (h, w, 3))).clip(0, 255).astype(np.uint8)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(
    w: int, h: int, *, depth: int = 8, colour: int = 0, extra: bytes = b"", idat=None
) -> bytes:
    """A PNG built chunk by chunk (so headers can lie); ``idat``: raw scanline bytes."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64) if idat is None else zlib.compress(idat, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + extra
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def _deflate_bomb(n: int) -> bytes:
    return zlib.compress(b"\x00" * n, 9)


def _tiff_float(a: np.ndarray) -> bytes:
    return _encode(Image.fromarray(a.astype(np.float32), mode="F"), "TIFF")


def _patch(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


def _sof_offset(jpeg: bytes) -> int:
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        i = jpeg.find(marker)
        if i >= 0:
            return i
    raise ValueError("no SOF")


def cases() -> list[tuple[str, bytes]]:
    photo = _photo()
    jpeg = _encode(photo, "JPEG", quality=90)
    prog = _encode(photo, "JPEG", quality=90, progressive=True)
    png = _encode(photo, "PNG")
    tiff = _encode(photo, "TIFF")
    webp = _encode(photo, "WEBP", quality=80)
    bmp = _encode(photo, "BMP")
    out: list[tuple[str, bytes]] = []

    # -- truncated files of every allowed format --------------------------------------------
    for fmt, data in (("jpg", jpeg), ("png", png), ("tif", tiff), ("webp", webp), ("bmp", bmp)):
        for keep in (1, 2, 10, 100):
            out.append((f"truncated-{keep}b.{fmt}", data[:keep]))
        for frac in (0.5, 0.9):
            out.append((f"truncated-{int(frac * 100)}pct.{fmt}", data[: int(len(data) * frac)]))
    out.append(("truncated-progressive-60pct.jpg", prog[: int(len(prog) * 0.6)]))
    out.append(("jpeg-without-eoi-and-half-scan.jpg", jpeg[: len(jpeg) // 2 + 7]))

    # -- corrupt headers --------------------------------------------------------------------
    sof = _sof_offset(jpeg)
    out.append(
        ("jpeg-sof-65500x65500.jpg", _patch(jpeg, sof + 5, struct.pack(">HH", 65500, 65500)))
    )
    out.append(("jpeg-sof-zero-size.jpg", _patch(jpeg, sof + 5, struct.pack(">HH", 0, 0))))
    out.append(("jpeg-sof-9000x9000.jpg", _patch(jpeg, sof + 5, struct.pack(">HH", 9000, 9000))))
    out.append(("jpeg-soi-only.jpg", b"\xff\xd8"))
    out.append(("jpeg-soi-eoi.jpg", b"\xff\xd8\xff\xd9"))
    out.append(("jpeg-magic-then-noise.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8))
    rng = np.random.default_rng(1)
    noisy = bytearray(jpeg)
    for i in rng.integers(2, 40, 12):
        noisy[int(i)] ^= 0xA5
    out.append(("jpeg-header-bitflips.jpg", bytes(noisy)))
    out.append(("png-bad-ihdr-crc.png", _patch(png, 29, b"\x00\x00\x00\x00")))
    out.append(("png-ihdr-100000x100000.png", _png(100_000, 100_000)))
    out.append(("png-ihdr-zero-width.png", _png(0, 100)))
    out.append(("png-ihdr-bad-depth.png", _png(64, 64, depth=7)))
    out.append(("png-ihdr-bad-colour.png", _png(64, 64, colour=5)))
    out.append(
        (
            "png-no-idat.png",
            b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 0, 0, 0, 0))
            + _chunk(b"IEND", b""),
        )
    )
    out.append(
        (
            "png-idat-garbage.png",
            b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", b"not zlib at all")
            + _chunk(b"IEND", b""),
        )
    )
    out.append(("png-idat-short.png", _png(64, 64, idat=b"\x00" * 100)))
    out.append(("png-signature-only.png", b"\x89PNG\r\n\x1a\n"))
    out.append(("tiff-header-only-le.tif", b"II*\x00\x08\x00\x00\x00"))
    out.append(("tiff-header-only-be.tif", b"MM\x00*\x00\x00\x00\x08"))
    out.append(
        (
            "tiff-ifd-loop.tif",
            b"II*\x00\x08\x00\x00\x00\x01\x00\x00\x01\x03\x00\x01\x00\x00\x00\x40\x00\x00\x00\x08\x00\x00\x00",
        )
    )
    out.append(("webp-riff-size-lies.webp", _patch(webp, 4, struct.pack("<I", 0x7FFFFFF0))))
    out.append(("webp-riff-only.webp", b"RIFF\x10\x00\x00\x00WEBPVP8 "))
    out.append(("bmp-65000x65000.bmp", _patch(bmp, 18, struct.pack("<ii", 65000, 65000))))
    out.append(("bmp-negative-width.bmp", _patch(bmp, 18, struct.pack("<i", -128))))
    out.append(("bmp-zero-size.bmp", _patch(bmp, 18, struct.pack("<ii", 0, 0))))
    out.append(("bmp-bad-bpp.bmp", _patch(bmp, 28, struct.pack("<H", 7))))

    # -- bombs: metadata and pixels (small files, huge decodes) -----------------------------
    ztxt = _chunk(b"zTXt", b"Comment\x00\x00" + _deflate_bomb(64 * 2**20))
    out.append(("png-ztxt-bomb.png", _png(64, 64, extra=ztxt)))
    iccp = _chunk(b"iCCP", b"icc\x00\x00" + _deflate_bomb(64 * 2**20))
    out.append(("png-iccp-bomb.png", _png(64, 64, extra=iccp)))
    itxt = _chunk(b"iTXt", b"Comment\x00\x01\x00\x00\x00" + _deflate_bomb(64 * 2**20))
    out.append(("png-itxt-bomb.png", _png(64, 64, extra=itxt)))
    many_text = b"".join(_chunk(b"tEXt", b"k%d\x00" % i + b"v" * 60000) for i in range(40))
    out.append(("png-many-text-chunks.png", _png(64, 64, extra=many_text)))
    out.append(("png-grey-10000x10000.png", _png(10_000, 10_000, idat=b"\x00" * (10_001 * 10_000))))
    out.append(("png-grey-20000x20000-header.png", _png(20_000, 20_000)))
    out.append(("png-rgba16-7000x7000-header.png", _png(7000, 7000, depth=16, colour=6)))
    out.append(("png-1x80000000.png", _png(1, 80_000_000)))
    out.append(("png-16-bit-grey-9000x9000-header.png", _png(9000, 9000, depth=16, colour=0)))
    out.append(("png-rgb-8200x8200-header.png", _png(8200, 8200, colour=2)))
    big_tiff = _encode(np.zeros((16, 16), np.uint8), "TIFF")
    # patch ImageWidth/ImageLength (tags 256/257, SHORT) to 60000
    patched = bytearray(big_tiff)
    for tag in (256, 257):
        for kind, fmt in ((3, "<H"), (4, "<I")):
            i = patched.find(struct.pack("<HH", tag, kind))
            if i >= 0:
                patched[i + 8 : i + 8 + struct.calcsize(fmt)] = struct.pack(fmt, 60000)
    out.append(("tiff-60000x60000-header.tif", bytes(patched)))

    # -- NaN / inf in float TIFFs -----------------------------------------------------------
    grad = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    for label, value in (("nan", np.nan), ("inf", np.inf), ("neg-inf", -np.inf)):
        a = grad.copy()
        a[10:20, 10:20] = value
        out.append((f"float-tiff-{label}.tif", _tiff_float(a)))
    out.append(("float-tiff-all-nan.tif", _tiff_float(np.full((64, 64), np.nan))))
    one = grad.copy()
    one[0, 0] = np.nan
    out.append(("float-tiff-one-nan.tif", _tiff_float(one)))

    # -- too small --------------------------------------------------------------------------
    out.append(("tiny-1x1.png", _encode(np.zeros((1, 1, 3), np.uint8), "PNG")))
    out.append(("tiny-15x400.jpg", _encode(np.zeros((15, 400, 3), np.uint8), "JPEG")))
    out.append(("tiny-8x8.bmp", _encode(np.zeros((8, 8, 3), np.uint8), "BMP")))

    # -- formats outside the allowlist (Pillow could open some of them) ----------------------
    out.append(("animated.gif", _encode(photo, "GIF")))
    out.append(("icon.ico", _encode(photo[:64, :64], "ICO")))
    out.append(("photo.ppm", _encode(photo, "PPM")))
    out.append(("photo.tga", _encode(photo, "TGA")))
    out.append(("photo.pcx", _encode(photo, "PCX")))
    out.append(
        ("photo.psd", b"8BPS\x00\x01" + b"\x00" * 6 + struct.pack(">HIIHH", 3, 64, 64, 8, 3))
    )
    out.append(("photo.sgi", _encode(photo, "SGI")))
    out.append(("photo.dds", _encode(Image.fromarray(photo).convert("RGBA"), "DDS")))
    out.append(("photo.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n"))
    out.append(
        ("photo.xbm", b"#define x_width 16\n#define x_height 16\nstatic char x_bits[] = {0};\n")
    )
    out.append(("photo.pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"))
    out.append(("photo.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="9e9" height="9e9"/>'))
    out.append(("photo.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"))

    # -- not images at all ------------------------------------------------------------------
    out.append(("empty.jpg", b""))
    out.append(("text.jpg", b"this is not a photo\n"))
    out.append(("html.png", b"<html><body>hello</body></html>"))
    out.append(("zip.jpg", b"PK\x03\x04" + b"\x00" * 200))
    out.append(("gzip.png", zlib.compress(png)))
    out.append(("elf.jpg", b"\x7fELF\x02\x01\x01" + b"\x00" * 500))
    out.append(("nul-bytes.png", b"\x00" * 4096))
    out.append(
        ("random.tif", np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    )
    out.append(("png-as-jpeg-name-truncated.jpg", png[:60]))
    out.append(("json.jpg", b'{"box": [' + b"[" * 5000 + b"]"))
    return out
