"""Physical scale (mm per pixel) from the user or a dermoscope field-of-view preset.

Without a scale, lengths stay in pixels and every ``*_mm`` field is None: a photo alone does not
say how large the lesion is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from skinscreen.errors import SkinscreenError


@dataclass(frozen=True)
class DermoscopePreset:
    """A field of view: the photo's longer side spans ``field_mm`` millimetres on the skin."""

    name: str
    field_mm: float
    description: str


#: Field-of-view presets for contact dermoscopy. They are generic, not brand specifications:
#: measure your own device once (photograph a ruler, divide mm by pixels) and prefer
#: ``--mm-per-pixel``.
DERMOSCOPE_PRESETS: dict[str, DermoscopePreset] = {
    p.name: p
    for p in (
        DermoscopePreset("fov10", 10.0, "the photo's longer side spans 10 mm of skin"),
        DermoscopePreset("fov15", 15.0, "the photo's longer side spans 15 mm of skin"),
        DermoscopePreset("fov20", 20.0, "the photo's longer side spans 20 mm of skin"),
        DermoscopePreset("fov25", 25.0, "the photo's longer side spans 25 mm of skin"),
    )
}


@dataclass(frozen=True)
class Scale:
    """mm per pixel (None: unknown) and where it came from (``user``, ``dermoscope:<name>``)."""

    mm_per_pixel: float | None = None
    source: str | None = None

    def to_dict(self) -> dict:
        return {"mm_per_pixel": self.mm_per_pixel, "source": self.source}


def resolve_scale(
    mm_per_pixel: float | None,
    dermoscope: str | None,
    size_hw: tuple[int, int],
    *,
    file_mm_per_pixel: float | None = None,
) -> Scale:
    """Scale for a photo of ``size_hw`` = (H, W) from ``--mm-per-pixel`` or ``--dermoscope``,
    else from the file itself (``file_mm_per_pixel``: a DICOM's pixel spacing, from
    :func:`skinscreen.io.dicom.dicom_mm_per_pixel`; source ``dicom``). The user's flags win.

    Raises:
        SkinscreenError: both given, a non-positive or non-finite value, or an unknown preset.
    """
    if mm_per_pixel is not None and dermoscope is not None:
        raise SkinscreenError("give either --mm-per-pixel or --dermoscope, not both")
    if mm_per_pixel is not None:
        v = float(mm_per_pixel)
        if not math.isfinite(v) or v <= 0:
            raise SkinscreenError(
                f"--mm-per-pixel must be a positive number (mm of skin per photo pixel), got {v}"
            )
        return Scale(v, "user")
    if dermoscope is not None:
        preset = DERMOSCOPE_PRESETS.get(dermoscope)
        if preset is None:
            raise SkinscreenError(
                f"unknown dermoscope preset '{dermoscope}': choose one of "
                f"{', '.join(DERMOSCOPE_PRESETS)} or give --mm-per-pixel"
            )
        return Scale(preset.field_mm / max(size_hw), f"dermoscope:{preset.name}")
    if file_mm_per_pixel is not None and math.isfinite(file_mm_per_pixel) and file_mm_per_pixel > 0:
        return Scale(float(file_mm_per_pixel), "dicom")
    return Scale()
