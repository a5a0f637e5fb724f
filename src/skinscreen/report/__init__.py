"""Reports: the versioned JSON schema, overlays and heatmap pictures, the offline HTML page.

A screening aid, never a diagnosis: every report carries :data:`skinscreen.DISCLAIMER`.
"""

from skinscreen.report.build import Assessment, assess_image, flat_row
from skinscreen.report.schema import SCHEMA_VERSION, LesionReport

__all__ = ["SCHEMA_VERSION", "Assessment", "LesionReport", "assess_image", "flat_row"]
