"""Reading the multipart upload into memory with limits, and sorting bad photos into HTTP codes.

Starlette's default form parser spools files above 1 MB to a temporary file on disk; photos must
never touch the disk, so this parser keeps the whole (size-capped) body in memory.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass

from fastapi import HTTPException, Request
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}

#: Bytes allowed on top of the photo for multipart headers and the small form fields.
FORM_OVERHEAD = 256 * 1024
#: Longest accepted ``box`` field (four numbers in JSON fit in far less).
MAX_BOX_CHARS = 200


@dataclass
class SegmentForm:
    """The parsed ``POST /api/segment`` form: photo bytes and the box prompt.

    ``box`` is ``None`` for ``"auto"``, else the raw parsed JSON value (validated later against
    the photo size by :func:`skinscreen.predictor.validate_box`).
    """

    image: bytes
    filename: str
    box: object | None
    features: bool = True


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        413,
        f"upload larger than the {limit / 2**20:.0f} MB limit: send a smaller or re-saved photo",
    )


async def read_segment_form(request: Request, max_upload_bytes: int) -> SegmentForm:
    """Parse ``multipart/form-data``: file field ``image``, optional fields ``box`` and
    ``features`` (``true``/``false``: run the lesion assessment, default true).

    Raises HTTPException: 413 (too large), 415 (not multipart), 400 (malformed multipart),
    422 (missing or empty ``image``, bad ``box``).
    """
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise HTTPException(
            415,
            "send multipart/form-data with a file field 'image' (and optionally a field 'box')",
        )
    cap = max_upload_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise _too_large(max_upload_bytes)

    async def limited():
        n = 0
        async for chunk in request.stream():
            n += len(chunk)
            if n > cap:
                raise _too_large(max_upload_bytes)
            yield chunk

    parser = MultiPartParser(
        request.headers, limited(), max_files=1, max_fields=8, max_part_size=64 * 1024
    )
    parser.spool_max_size = cap + 1  # keep the photo in memory: it never goes to disk
    try:
        form = await parser.parse()
    except MultiPartException as e:
        raise HTTPException(400, f"malformed multipart body: {e}") from None
    try:
        upload = form.get("image")
        if upload is None:
            raise HTTPException(422, "missing file field 'image': attach the photo as 'image'")
        if not isinstance(upload, UploadFile):
            raise HTTPException(
                422, "field 'image' must be a file upload (multipart file part), not text"
            )
        data = await upload.read()
        if not data:
            raise HTTPException(422, "the uploaded 'image' file is empty (0 bytes)")
        if len(data) > max_upload_bytes:
            raise _too_large(max_upload_bytes)
        box_field = form.get("box")
        if isinstance(box_field, UploadFile):
            raise HTTPException(422, "field 'box' must be text, not a file")
        feats = form.get("features", "true")
        if isinstance(feats, UploadFile) or feats.strip().lower() not in _BOOLS:
            raise HTTPException(422, "field 'features' must be true or false")
        return SegmentForm(
            image=data,
            filename=upload.filename or "",
            box=parse_box(box_field),
            features=_BOOLS[feats.strip().lower()],
        )
    finally:
        await form.close()


def parse_box(value: str | None) -> object | None:
    """``None`` / ``""`` / ``"auto"`` -> None; otherwise JSON ``[x0, y0, x1, y1]`` (photo pixels).

    Only the JSON shape is checked here (four finite numbers); bounds are checked against the
    photo by the predictor.
    """
    if value is None or not value.strip() or value.strip().strip('"').lower() == "auto":
        return None
    if len(value) > MAX_BOX_CHARS:  # four numbers never need more; bounds the JSON depth too
        raise HTTPException(
            422, f"box field is {len(value)} characters: send [x0, y0, x1, y1] in photo pixels"
        )
    try:
        box = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        raise HTTPException(
            422, f'box {value[:80]!r} is not JSON: send [x0, y0, x1, y1] in photo pixels or "auto"'
        ) from None
    if (
        not isinstance(box, list)
        or len(box) != 4
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
    ):
        raise HTTPException(
            422,
            f'box must be a JSON list of 4 numbers [x0, y0, x1, y1] or "auto", got {value[:80]!r}',
        )
    if not all(math.isfinite(v) for v in box):
        raise HTTPException(422, f"box {value[:80]} contains NaN or infinity")
    return [float(v) for v in box]


def check_image_header(data: bytes, max_pixels: int) -> tuple[int, int]:
    """Identify the photo from its header only (no pixel decoding) and return ``(W, H)``.

    Raises HTTPException: 415 when the bytes are not an image Pillow can read, 413 when the
    header declares more than ``max_pixels`` pixels (decompression bomb guard).
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except UnidentifiedImageError:
        raise HTTPException(
            415,
            "the uploaded file is not an image we can read: send a JPEG, PNG, WebP, TIFF or BMP photo",
        ) from None
    except Image.DecompressionBombError:
        raise HTTPException(
            413, f"image refused as a decompression bomb (more than {max_pixels / 1e6:.0f} MP)"
        ) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise HTTPException(422, f"cannot read the image header (corrupt file?): {e}") from None
    if w * h > max_pixels:
        raise HTTPException(
            413,
            f"{w}x{h} = {w * h / 1e6:.0f} MP is larger than the {max_pixels / 1e6:.0f} MP limit "
            "(possible decompression bomb); downscale the photo first",
        )
    return w, h
