"""COCO run-length encoding of the lesion mask (pycocotools), as a one-image COCO document."""

from __future__ import annotations

import numpy as np

CATEGORY = {"id": 1, "name": "lesion", "supercategory": "skin"}


def _mask_api():
    try:
        from pycocotools import mask as mask_api
    except ImportError:  # pragma: no cover - the extra is installed by make
        from skinscreen.errors import SkinscreenError

        raise SkinscreenError(
            "COCO output needs the 'formats' extra: pip install 'skinscreen[formats]'"
        ) from None
    return mask_api


def encode_rle(mask: np.ndarray) -> dict:
    """``(H, W)`` bool mask -> COCO compressed RLE ``{"size": [H, W], "counts": str}``."""
    rle = _mask_api().encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: dict) -> np.ndarray:
    """COCO RLE (compressed ``counts`` as str or bytes) -> ``(H, W)`` bool mask."""
    counts = rle["counts"]
    r = {
        "size": list(rle["size"]),
        "counts": counts.encode() if isinstance(counts, str) else counts,
    }
    return _mask_api().decode(r).astype(bool)


def coco_document(
    mask: np.ndarray, *, file_name: str, score: float | None = None, model: str | None = None
) -> dict:
    """A COCO instance-segmentation document with one image, one ``lesion`` annotation (RLE,
    ``iscrowd`` 0; bbox ``[x, y, w, h]`` and area in pixels) and, for a model's outline, its
    ``score`` (the decoder's IoU estimate)."""
    m = _mask_api()
    h, w = mask.shape
    rle = encode_rle(mask)
    raw = {"size": rle["size"], "counts": rle["counts"].encode()}
    ann = {
        "id": 1,
        "image_id": 1,
        "category_id": CATEGORY["id"],
        "segmentation": rle,
        "area": int(m.area(raw)),
        "bbox": [float(v) for v in m.toBbox(raw)],
        "iscrowd": 0,
    }
    if score is not None:
        ann["score"] = float(score)
    from skinscreen._version import __version__
    from skinscreen.disclaimer import DISCLAIMER

    return {
        "info": {
            "description": "skinscreen lesion outline" + (f" ({model})" if model else ""),
            "version": __version__,
            "contributor": "skinscreen",
            "disclaimer": DISCLAIMER,
        },
        "images": [{"id": 1, "file_name": file_name, "width": int(w), "height": int(h)}],
        "annotations": [ann],
        "categories": [CATEGORY],
    }
