"""Skin tone: the Individual Typology Angle (ITA) of the skin around a lesion.

ITA = arctan((L* - 50) / b*) in degrees (Chardon, Cretois & Hourseau, Int J Cosmet Sci 1991),
with the six categories of Del Bino & Bernerd (Br J Dermatol 2013). It is what fairness reports
stratify by; on dermoscopy photos it depends on the dermoscope's light and the camera's white
balance, so treat it as an estimate, not a colorimeter reading.
"""

from __future__ import annotations

import numpy as np

#: (lower bound in degrees, category), checked top to bottom: ITA > 55 is very light, etc.
ITA_CATEGORIES: tuple[tuple[float, str], ...] = (
    (55.0, "very light"),
    (41.0, "light"),
    (28.0, "intermediate"),
    (10.0, "tan"),
    (-30.0, "brown"),
    (-np.inf, "dark"),
)

#: ITA is not computed when the skin's b* is at or below this (a blue or grey cast: real skin
#: under neutral light has b* > 0, and the formula is meaningless near b* = 0).
ITA_MIN_B = 0.5


def ita_deg(lab: np.ndarray) -> float | None:
    """ITA in degrees of one CIELAB colour ``(3,)`` ``[L*, a*, b*]``; None when ``b* <= 0.5``."""
    lightness, _, b = (float(v) for v in lab)
    if b <= ITA_MIN_B:
        return None
    return float(np.degrees(np.arctan((lightness - 50.0) / b)))


def ita_category(ita: float | None) -> str | None:
    """Skin-tone category of an ITA value (``very light`` ... ``dark``), None for None."""
    if ita is None:
        return None
    for lower, name in ITA_CATEGORIES:
        if ita > lower:
            return name
    return ITA_CATEGORIES[-1][1]
