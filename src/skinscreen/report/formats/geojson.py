"""The lesion outline as GeoJSON (shapely): exact pixel-edge polygons in photo pixels.

Coordinates are photo pixels, ``[x, y]`` with the origin at the photo's top-left corner and y
down (the convention of QuPath and other image tools; not WGS84 longitude/latitude). Pixel
``(row r, col c)`` is the unit square ``[c, c+1] x [r, r+1]``: the polygon is the union of the
mask's pixel squares, so rasterising it by pixel centres gives the mask back exactly.
"""

from __future__ import annotations

import numpy as np


def _shapely():
    try:
        import shapely
    except ImportError:  # pragma: no cover - the extra is installed by make
        from skinscreen.errors import SkinscreenError

        raise SkinscreenError(
            "GeoJSON output needs the 'formats' extra: pip install 'skinscreen[formats]'"
        ) from None
    return shapely


def mask_geometry(mask: np.ndarray):
    """``(H, W)`` bool mask -> shapely Polygon or MultiPolygon (holes kept), pixel edges."""
    shapely = _shapely()
    m = np.asarray(mask, dtype=bool)
    padded = np.zeros((m.shape[0], m.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = m
    d = np.diff(padded, axis=1)
    rows_s, cols_s = np.nonzero(d == 1)  # run starts (column index of the first pixel)
    rows_e, cols_e = np.nonzero(d == -1)  # run ends (one past the last pixel)
    boxes = shapely.box(cols_s, rows_s, cols_e, rows_s + 1)
    geom = shapely.union_all(boxes)
    return shapely.simplify(geom, 0.0)  # drop collinear vertices; the shape is unchanged


def rasterise(geometry, shape_hw: tuple[int, int]) -> np.ndarray:
    """A geometry in photo pixels -> ``(H, W)`` bool mask of the pixels whose centre it covers."""
    shapely = _shapely()
    h, w = shape_hw
    yy, xx = np.mgrid[0:h, 0:w]
    shapely.prepare(geometry)
    return shapely.contains_xy(geometry, xx.ravel() + 0.5, yy.ravel() + 0.5).reshape(h, w)


def feature_collection(mask: np.ndarray, *, properties: dict) -> dict:
    """A GeoJSON FeatureCollection with one ``lesion`` Feature (Polygon or MultiPolygon)."""
    shapely = _shapely()
    geom = mask_geometry(mask)
    h, w = mask.shape
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(geom),
                "properties": {
                    "label": "lesion",
                    "coordinates": "photo pixels, origin top-left, y down",
                    "image_width": int(w),
                    "image_height": int(h),
                    "area_px": int(np.count_nonzero(mask)),
                    **properties,
                },
            }
        ],
    }
