"""The measurement noise floor: how much an unchanged lesion's measurements move when it is
photographed again (other light, angle, zoom, focus, compression).

The values ship as ``skinscreen/assets/compare-noise-floor.json``, produced by
``scripts/compare_noise_floor.py`` (its provenance is stored with the values; docs/compare.md).
A change inside the floor is reported as "no measurable change".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

ASSET = "compare-noise-floor.json"


@dataclass(frozen=True)
class NoiseFloor:
    """Relative changes (fractions: 0.08 = 8 %) and absolute deltas an unchanged lesion shows.

    ``area_rel`` / ``diameter_max_rel``: of the registered area and maximum diameter;
    ``asymmetry``: of the mean shape-asymmetry index; ``border``: of the compactness index.
    ``source``: how the values were measured.
    """

    area_rel: float
    diameter_max_rel: float
    asymmetry: float
    border: float
    source: str

    def to_dict(self) -> dict:
        return {
            "area_rel": self.area_rel,
            "diameter_max_rel": self.diameter_max_rel,
            "asymmetry": self.asymmetry,
            "border": self.border,
            "source": self.source,
        }


@lru_cache(maxsize=1)
def default_noise_floor() -> NoiseFloor:
    """The shipped noise floor (the asset's ``floor`` values)."""
    text = (resources.files("skinscreen") / "assets" / ASSET).read_text("utf-8")
    data = json.loads(text)
    f = data["floor"]
    return NoiseFloor(
        area_rel=float(f["area_rel"]),
        diameter_max_rel=float(f["diameter_max_rel"]),
        asymmetry=float(f["asymmetry"]),
        border=float(f["border"]),
        source=str(data["provenance"]),
    )
