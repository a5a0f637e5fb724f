"""DICOM Segmentation (SEG) of the lesion, written with highdicom.

A SEG must reference the image it segments. For a DICOM input that is the input itself (the SEG
joins its study, with its patient module, as DICOM requires). For a JPEG/PNG input there is no
source object, so :func:`secondary_capture` first wraps the photo as a DICOM Secondary Capture
Image (the IOD DICOM gives converted images that lack acquisition details; highdicom's
``SCImage``), written next to the SEG; patient name and ID stay empty.

Binary SEG: the mask. Fractional SEG (``PROBABILITY``, 8 bit): the model's probability map.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from skinscreen._version import __version__

MANUFACTURER = "skinscreen"


@dataclass(frozen=True)
class Algorithm:
    """Who drew the outline: a model (``name``; ``version``: skinscreen's; ``variant``: the
    bundle variant; ``weights_sha256``: the model's checkpoint) or, with ``name`` None, a mask the
    user supplied (``MANUAL`` in the SEG)."""

    name: str | None = None
    version: str = __version__
    variant: str | None = None
    weights_sha256: str | None = None


def _hd():
    try:
        import highdicom
    except ImportError:  # pragma: no cover - the extra is installed by make
        from skinscreen.errors import SkinscreenError

        raise SkinscreenError(
            "DICOM SEG output needs the 'formats' extra: pip install 'skinscreen[formats]'"
        ) from None
    return highdicom


def secondary_capture(photo: np.ndarray, *, mm_per_pixel: float | None, description: str):
    """Wrap an ``(H, W, 3)`` uint8 RGB photo as a DICOM Secondary Capture image (new study and
    series UIDs, empty patient name and ID, pixel spacing when known)."""
    hd = _hd()
    sc = hd.sc.SCImage(
        pixel_array=np.ascontiguousarray(photo),
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        study_instance_uid=hd.UID(),
        series_instance_uid=hd.UID(),
        series_number=1,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        patient_id="",
        patient_name="",
        # highdicom asks for an orientation; a skin photo's is not known: emptied below
        patient_orientation=("L", "F"),
        pixel_spacing=(mm_per_pixel, mm_per_pixel) if mm_per_pixel else None,
    )
    sc.PatientOrientation = ""  # Type 2C: present, unknown
    sc.Laterality = ""  # Type 2C: present, unknown
    sc.SeriesDescription = description[:64]
    sc.ConversionType = "WSD"  # workstation: converted from a photo file
    return sc


def segmentation(
    source,
    values: np.ndarray,
    *,
    fractional: bool,
    algorithm: Algorithm,
    series_number: int = 100,
):
    """A highdicom ``Segmentation`` of one segment ("lesion") on ``source`` (a pydicom Dataset).

    Args:
        values: ``(H, W)`` bool mask (binary SEG) or float probabilities in [0, 1] (fractional).
        fractional: write a ``FRACTIONAL`` (probability) SEG instead of a ``BINARY`` one.
    """
    hd = _hd()
    from pydicom.sr.codedict import codes

    if algorithm.name is not None:
        params = {
            k: v
            for k, v in (
                ("variant", algorithm.variant),
                ("weights_sha256", algorithm.weights_sha256),
            )
            if v
        } or None
        alg_id = hd.AlgorithmIdentificationSequence(
            name=algorithm.name,
            family=codes.cid7162.ArtificialIntelligence,
            version=algorithm.version,
            source=f"skinscreen {__version__}",
            parameters=params,
        )
        alg_type = "AUTOMATIC"
    else:
        alg_id, alg_type = None, "MANUAL"
    desc = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="lesion",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion,
        algorithm_type=alg_type,
        algorithm_identification=alg_id,
    )
    if fractional:
        pixels = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)
    else:
        pixels = np.asarray(values).astype(bool)
    seg = hd.seg.Segmentation(
        source_images=[source],
        pixel_array=pixels,
        segmentation_type="FRACTIONAL" if fractional else "BINARY",
        segment_descriptions=[desc],
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=algorithm.name or "user mask",
        software_versions=__version__,
        device_serial_number="none",
        content_description=("lesion probability" if fractional else "lesion outline")
        + " (screening aid, not a diagnosis)",
        content_label="LESION",
        omit_empty_frames=False,
    )
    seg.PatientOrientation = source.get("PatientOrientation", "")
    seg.SeriesDescription = (
        "skinscreen lesion probability" if fractional else "skinscreen lesion"
    )[:64]
    return seg


def to_bytes(ds) -> bytes:
    """A dataset encoded as a DICOM Part 10 file."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def read_segment(data: bytes) -> np.ndarray:
    """Segment 1 of a single-frame SEG file as ``(H, W)``: bool (binary) or float in [0, 1]
    (fractional). Reads with pydicom (highdicom's reader asks for a slice thickness, which a
    photo's pixel measures rightly lack)."""
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data))
    a = np.asarray(ds.pixel_array)
    if a.ndim == 3:
        a = a[0]
    if ds.SegmentationType == "FRACTIONAL":
        return a.astype(np.float32) / float(ds.MaximumFractionalValue)
    return a.astype(bool)
