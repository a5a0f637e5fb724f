"""Exchange formats for a lesion outline and its assessment (``--format`` of segment/assess).

``png`` (the default) is the 0/255 mask PNG; the others need the ``formats`` extra and are
written by the field's libraries: ``dicom-seg`` and ``dicom-seg-fractional`` (highdicom),
``coco`` (pycocotools RLE), ``geojson`` (shapely), ``fhir`` (fhir.resources; assess only).
Every format, file name and example: docs/formats.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skinscreen.errors import SkinscreenError

FORMATS = ("png", "dicom-seg", "dicom-seg-fractional", "coco", "geojson", "fhir")
DEFAULT_FORMATS = ("png",)


def parse_formats(value: str | None, allowed: tuple[str, ...] = FORMATS) -> tuple[str, ...]:
    """``"coco,geojson"`` -> ``("coco", "geojson")`` (order kept, duplicates dropped).

    Raises:
        SkinscreenError: an unknown name or an empty list.
    """
    if value is None:
        return DEFAULT_FORMATS
    names = [v.strip().lower() for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise SkinscreenError(
            f"unknown format {', '.join(bad) or repr(value)}: give a comma list of "
            f"{', '.join(allowed)}"
        )
    return tuple(dict.fromkeys(names))


@dataclass
class Outline:
    """What the writers need about one photo's result.

    ``photo``: ``(H, W, 3)`` uint8; ``mask``: ``(H, W)`` bool; ``probability``: ``(H, W)``
    float in [0, 1] or None (a user's mask); ``source_path``: the photo file (a DICOM one is
    referenced by the SEG); ``model``/``variant``: None for a user's mask.
    """

    photo: np.ndarray
    mask: np.ndarray
    source_path: Path
    probability: np.ndarray | None = None
    model: str | None = None
    variant: str | None = None
    score: float | None = None
    mm_per_pixel: float | None = None


def _weights_sha(model: str | None) -> str | None:
    from skinscreen.spec import REGISTRY

    spec = REGISTRY.get(model or "")
    return None if spec is None else spec.checkpoint.sha256


def _dicom_files(formats: tuple[str, ...], out_dir: Path, stem: str, o: Outline) -> dict:
    from skinscreen.io import dicom
    from skinscreen.report.formats import dicom_seg

    files: dict[Path, bytes] = {}
    if dicom.is_dicom(o.source_path):
        source = dicom.read_dataset(o.source_path)
    else:
        source = dicom_seg.secondary_capture(
            o.photo, mm_per_pixel=o.mm_per_pixel, description=f"photo {o.source_path.name}"
        )
        files[out_dir / f"{stem}_source.dcm"] = dicom_seg.to_bytes(source)
    alg = dicom_seg.Algorithm(o.model, variant=o.variant, weights_sha256=_weights_sha(o.model))
    if "dicom-seg" in formats:
        seg = dicom_seg.segmentation(source, o.mask, fractional=False, algorithm=alg)
        files[out_dir / f"{stem}_seg.dcm"] = dicom_seg.to_bytes(seg)
    if "dicom-seg-fractional" in formats:
        seg = dicom_seg.segmentation(
            source, o.probability, fractional=True, algorithm=alg, series_number=101
        )
        files[out_dir / f"{stem}_prob_seg.dcm"] = dicom_seg.to_bytes(seg)
    return files


def output_files(
    formats: tuple[str, ...],
    out_dir: Path,
    stem: str,
    outline: Outline,
    *,
    report: dict | None = None,
    body_site: str | None = None,
    identifiers: dict[str, str] | None = None,
) -> dict[Path, bytes]:
    """``path -> bytes`` of every requested format except ``png`` (the verbs write that one),
    for :func:`skinscreen.io.write.write_files_atomic`.

    Raises:
        SkinscreenError: a format that needs what this result lacks (a probability map, a report).
    """
    files: dict[Path, bytes] = {}
    o = outline
    if "dicom-seg" in formats or "dicom-seg-fractional" in formats:
        from skinscreen.io import dicom

        if "dicom-seg-fractional" in formats and o.probability is None:
            raise SkinscreenError(
                "dicom-seg-fractional needs the model's probability map: a supplied --mask "
                "has none (use dicom-seg)"
            )
        try:
            with dicom.quiet():  # highdicom copies the patient module: nothing of it is logged
                files.update(_dicom_files(formats, out_dir, stem, o))
        except SkinscreenError:
            raise
        except Exception as e:  # highdicom refuses a source it cannot reference
            raise SkinscreenError(
                f"cannot write a DICOM SEG for {o.source_path.name} ({type(e).__name__}: {e}); "
                "the other formats (png, coco, geojson) need no DICOM source"
            ) from None
    if "coco" in formats:
        from skinscreen.report.formats import coco

        doc = coco.coco_document(o.mask, file_name=o.source_path.name, score=o.score, model=o.model)
        files[out_dir / f"{stem}.coco.json"] = json.dumps(doc, indent=2).encode()
    if "geojson" in formats:
        from skinscreen.report.formats import geojson

        props = {"image": o.source_path.name, "model": o.model}
        if o.mm_per_pixel:
            props["mm_per_pixel"] = o.mm_per_pixel
        doc = geojson.feature_collection(o.mask, properties=props)
        files[out_dir / f"{stem}.geojson"] = json.dumps(doc).encode()
    if "fhir" in formats:
        from skinscreen.report.formats import fhir

        if report is None:
            raise SkinscreenError("fhir needs the measurements: use `skinscreen assess`")
        doc = fhir.observation(report, body_site=body_site, identifiers=identifiers)
        files[out_dir / f"{stem}.fhir.json"] = json.dumps(doc, indent=2).encode()
    return files
