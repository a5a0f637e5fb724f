"""Reports: the versioned JSON schema, overlays and heatmap pictures, the offline HTML page.

A screening aid, never a diagnosis: every report carries :data:`skinscreen.DISCLAIMER`.
Names are imported lazily (``python -m skinscreen.report.schema`` prints the JSON Schema).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SCHEMA_VERSION": "skinscreen.report.schema",
    "LesionReport": "skinscreen.report.schema",
    "Assessment": "skinscreen.report.build",
    "assess_image": "skinscreen.report.build",
    "flat_row": "skinscreen.report.build",
    "render_html": "skinscreen.report.html",
    "report_pictures": "skinscreen.report.html",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
