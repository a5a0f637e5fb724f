"""Server limits and model choice for the web app (one frozen object, no globals)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from skinscreen.web.guard import LOCAL_HOSTS

#: Largest accepted upload in bytes (phone JPEGs are 2-12 MB; HEIC/PNG exports can be larger).
MAX_UPLOAD_BYTES = 30 * 1024 * 1024
#: Largest accepted photo in pixels (decoded from the header before any pixel is decoded).
MAX_PIXELS = 50_000_000
#: Encodings kept in the in-memory LRU (each holds the photo and a 4 MB embedding).
CACHE_ENTRIES = 8
#: Upper bound on the LRU's memory (photo pixels + embeddings), bytes.
CACHE_BYTES = 768 * 1024 * 1024
#: Longest side of the heatmap PNG sent to the page (the page stretches it over the photo).
HEATMAP_MAX_SIDE = 512


@dataclass(frozen=True)
class WebSettings:
    """Configuration of one web app instance.

    Attributes:
        model: registry name of the model bundle to serve.
        variant: bundle variant (None: the manifest's default).
        bundle_dir: explicit bundle directory (None: ``skinscreen.paths.bundle_dir(model)``).
        threads: ONNX Runtime intra-op threads (None: the engine's default).
        engine: ``auto``/``onnxruntime``/``openvino`` (None: ``$SKINSCREEN_ENGINE`` or auto; see
            :mod:`skinscreen.engine.select`).
        box_check: the predictor's ``box_check`` (None: on when the model has one and its
            bundle is built; :mod:`skinscreen.box_check`).
        commercial_only: run only weights whose licence allows commercial use (None:
            ``$SKINSCREEN_COMMERCIAL_ONLY``; :mod:`skinscreen.licences`).
        max_upload_bytes: uploads larger than this get HTTP 413.
        max_pixels: photos with more pixels than this get HTTP 413.
        cache_entries, cache_bytes: bounds of the in-memory encoding LRU (never on disk).
        heatmap_max_side: longest side of the heatmap PNG.
        allowed_origins: extra origins allowed by CORS (default none: same origin only).
        allowed_hosts: ``Host`` names answered (any port); None: any (the user bound a network
            interface on purpose); default the loopback names
            (:data:`skinscreen.web.guard.LOCAL_HOSTS`).
        workers, queue_size: model requests run at once / waiting; more get 503 + Retry-After.
    """

    model: str = "litemedsam"
    variant: str | None = None
    bundle_dir: Path | None = None
    threads: int | None = None
    engine: str | None = None
    box_check: bool | None = None
    commercial_only: bool | None = None
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_pixels: int = MAX_PIXELS
    cache_entries: int = CACHE_ENTRIES
    cache_bytes: int = CACHE_BYTES
    heatmap_max_side: int = HEATMAP_MAX_SIDE
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] | None = LOCAL_HOSTS
    workers: int = 1
    queue_size: int = 4
