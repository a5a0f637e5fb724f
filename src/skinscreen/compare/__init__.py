"""Evolving lesions: compare the same lesion across visits (registration, change, noise floor,
change report) and read the scale from a ruler in the photo. A screening aid, never a diagnosis.

Names are imported lazily (``python -m skinscreen.compare.schema`` prints the JSON Schema).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "COMPARE_SCHEMA_VERSION": "skinscreen.compare.schema",
    "ComparisonReport": "skinscreen.compare.schema",
    "Comparison": "skinscreen.compare.change",
    "compare_photos": "skinscreen.compare.change",
    "NotSameLesionError": "skinscreen.compare.registration",
    "Registration": "skinscreen.compare.registration",
    "register": "skinscreen.compare.registration",
    "RulerScale": "skinscreen.compare.ruler",
    "find_ruler_scale": "skinscreen.compare.ruler",
    "change_pictures": "skinscreen.compare.html",
    "render_change_html": "skinscreen.compare.html",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
