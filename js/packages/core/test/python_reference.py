"""Reference outputs of skinscreen's Python runtime for @skinscreen/core's parity tests.

Usage: python python_reference.py OUT_DIR [BUNDLES_ROOT]

Writes, per case, into OUT_DIR (a temp dir the JS test makes and removes; never committed):
  <case>.jpg          the photo the case reads (a copy, or a made-up edge case)
  <case>.rgb.u8       Pillow's EXIF-upright decode, (H, W, 3) uint8
  <case>.input.f32    preprocess(): (1, 3, S, S) float32
  <case>.mask.u8      the predictor's mask, (H, W) uint8 0/1 (absent when predict() refused)
  <case>.json         box, box_used, polygon, svg_path, area_px, box_check, or "error"
and cases.json listing them. Runs the onnx-fp32 variant in onnxruntime (the JS side runs the
same files in onnxruntime-node), with the plain decoder + box check and with the re-prompt pair.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from skinscreen.engine.bundle import open_bundle
from skinscreen.errors import SkinscreenError
from skinscreen.io.image import load_image
from skinscreen.predictor import LesionPredictor
from skinscreen.preprocess.transforms import box_from_mask, preprocess

ROOT = Path(__file__).resolve().parents[4]
EXAMPLES = ROOT / "examples"


def cases(tmp: Path) -> list[dict]:
    out = []
    for img in sorted((EXAMPLES / "images").glob("*.jpg")):
        mask = np.asarray(Image.open(EXAMPLES / "masks" / f"{img.stem}.png")) > 0
        box = box_from_mask(mask).tolist()
        out.append(
            {
                "name": img.stem,
                "src": img,
                "box": box,
                "expert": str(EXAMPLES / "masks" / f"{img.stem}.png"),
            }
        )
    phone = EXAMPLES / "phone" / "PAD_PAT_1020_111_593.jpg"
    w, h = Image.open(phone).size
    out.append({"name": "phone", "src": phone, "box": [w * 0.3, h * 0.3, w * 0.7, h * 0.7]})
    # EXIF-rotated: the first sample stored sideways with orientation 6 (rotate 90 CW to view)
    first = sorted((EXAMPLES / "images").glob("*.jpg"))[0]
    im = Image.open(first)
    exif = Image.Exif()
    exif[0x0112] = 6
    rot = tmp / "exif6.src.jpg"
    im.transpose(Image.Transpose.ROTATE_90).save(rot, quality=92, exif=exif)
    up_w, up_h = im.size  # upright size = the original's
    out.append(
        {"name": "exif6", "src": rot, "box": [up_w * 0.25, up_h * 0.2, up_w * 0.75, up_h * 0.8]}
    )
    # box partly outside the photo: refused (beyond half a pixel) or clipped (within it)
    out.append({"name": "outside", "src": first, "box": [-40, 0, 50, 50]})
    out.append({"name": "edge", "src": first, "box": [-0.4, 100.0, 300.0, up_h + 0.3]})
    # tiny lesion box (12 x 12 px)
    out.append({"name": "tiny", "src": first, "box": [500, 300, 512, 312]})
    # no lesion: a flat skin-coloured photo
    flat = tmp / "flat.src.jpg"
    Image.new("RGB", (320, 240), (205, 160, 140)).save(flat, quality=95)
    out.append({"name": "flat", "src": flat, "box": [60, 40, 260, 200]})
    return out


def main() -> None:
    out = Path(sys.argv[1])
    bundles = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    out.mkdir(parents=True, exist_ok=True)
    root = (bundles / "litemedsam") if bundles else None
    check_root = (bundles / "litemedsam-boxaug") if bundles else None
    plain = LesionPredictor(
        bundle=open_bundle("litemedsam", root=root, variant="onnx-fp32"),
        engine="onnxruntime",
        box_check=False,
    )
    if check_root is not None:
        from skinscreen.box_check import open_box_checker

        checked = LesionPredictor(
            bundle=open_bundle("litemedsam", root=root, variant="onnx-fp32"),
            engine="onnxruntime",
            box_check=False,
        )
        checked.box_checker = open_box_checker(
            checked.bundle, "onnxruntime", None, True, check_root
        )
    else:
        checked = LesionPredictor(
            bundle=open_bundle("litemedsam", variant="onnx-fp32"),
            engine="onnxruntime",
            box_check=True,
        )
    reprompt = LesionPredictor(
        bundle=open_bundle("litemedsam", root=root, variant="onnx-fp32"),
        engine="onnxruntime",
        reprompt=True,
        box_check=False,
    )
    listed = []
    encodings = {}  # one encoder run per photo (the three predictors share the engine's files)
    for c in cases(out):
        name = c["name"]
        shutil.copyfile(c["src"], out / f"{name}.jpg")
        image = load_image(out / f"{name}.jpg")
        (out / f"{name}.rgb.u8").write_bytes(np.ascontiguousarray(image).tobytes())
        x, _ = preprocess(plain.spec, image)
        (out / f"{name}.input.f32").write_bytes(x.astype("<f4").tobytes())
        meta = {"name": name, "width": image.shape[1], "height": image.shape[0], "box": c["box"]}
        if "expert" in c:
            meta["expert"] = c["expert"]
        key = str(c["src"])
        if key not in encodings:
            encodings[key] = reprompt.encode(image)
        enc = encodings[key]
        for mode, pred in (("plain", plain), ("check", checked), ("reprompt", reprompt)):
            pred.set_encoding(enc if mode == "reprompt" else replace(enc, prelude=None))
            try:
                seg = pred.predict(c["box"])
            except SkinscreenError as e:
                meta[mode] = {"error": str(e), "error_type": type(e).__name__}
                continue
            (out / f"{name}.{mode}.mask.u8").write_bytes(seg.mask.astype(np.uint8).tobytes())
            d = seg.to_json_dict()
            meta[mode] = {
                "polygon": seg.polygon.tolist(),
                "svg_path": seg.svg_path,
                "area_px": seg.area_px,
                "box_used": seg.box_used.tolist(),
                "box_check": d.get("box_check"),
                "iou_prediction": seg.iou_prediction,
            }
        (out / f"{name}.json").write_text(json.dumps(meta))
        listed.append(name)
    (out / "cases.json").write_text(json.dumps(listed))
    from skinscreen import paths

    dirs = {
        "litemedsam": str(root or paths.bundle_dir("litemedsam")),
        "litemedsam-boxaug": str(check_root or paths.bundle_dir("litemedsam-boxaug")),
    }
    (out / "bundles.json").write_text(json.dumps(dirs))


if __name__ == "__main__":
    main()
