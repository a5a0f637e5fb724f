"""FastAPI app factory: JSON API, the one-page UI, and read-only bundle files for on-device mode.

Routes:

- ``GET /`` the page; ``/static/*`` its files (``/static/vendor/`` holds onnxruntime-web, installed
  by ``scripts/fetch_web_vendor.sh``);
- ``GET /api/health``, ``GET /api/models``;
- ``POST /api/segment`` multipart: file ``image``, field ``box`` = ``[x0, y0, x1, y1]`` (photo
  pixels, JSON) or ``"auto"``;
- ``GET /api/models/{model}/manifest.json`` and ``GET /api/models/{model}/{variant}/{part}`` (the
  served bundle's encoder/decoder ONNX files, for the in-browser runtime);
- ``GET /openapi.json`` and ``GET /docs`` (Swagger UI served from ``/static/vendor``, no CDN).

Security: the server binds 127.0.0.1 unless told otherwise (``skinscreen serve``), sends no CORS
headers unless origins are configured explicitly (never ``*``), and sets a Content-Security-Policy
that lets the page talk only to this server. The page is cross-origin isolated (COOP/COEP) so that
onnxruntime-web can use WebAssembly threads.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from skinscreen._version import __version__
from skinscreen.disclaimer import DISCLAIMER
from skinscreen.errors import SkinscreenError
from skinscreen.web import assessment
from skinscreen.web.guard import ClientGone, HostOriginGuard, WorkQueue, public_message
from skinscreen.web.schemas import ErrorResponse, Health, ModelFile, ModelInfo, SegmentResponse
from skinscreen.web.service import SegmentService
from skinscreen.web.settings import WebSettings
from skinscreen.web.upload import read_segment_form

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
ORT_WEB_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")
FETCH_HINT = "run scripts/fetch_web_vendor.sh (needs npm) to install it"

mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")

PAGE_CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; "
    "img-src 'self' data: blob:; connect-src 'self' data: blob:; style-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; frame-ancestors 'none'"
)

ERRORS = {
    code: {"model": ErrorResponse, "description": desc}
    for code, desc in {
        400: "malformed multipart body",
        413: "upload or photo too large (bytes or pixels)",
        415: "not multipart, or the file is not an image",
        422: "missing/empty image, undecodable or too small photo, bad box",
        503: "model bundle missing or unusable",
    }.items()
}

SEGMENT_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["image"],
                "properties": {
                    "image": {
                        "type": "string",
                        "format": "binary",
                        "description": "the photo (JPEG, PNG, WebP, TIFF, BMP); never stored",
                    },
                    "box": {
                        "type": "string",
                        "default": "auto",
                        "description": 'JSON [x0, y0, x1, y1] in photo pixels (XYXY, EXIF-upright), or "auto"',
                        "example": "[120, 80, 600, 520]",
                    },
                    "features": {
                        "type": "boolean",
                        "default": True,
                        "description": "run the lesion assessment (false: mask only, faster)",
                    },
                },
            }
        }
    },
}


def vendor_present(files: tuple[str, ...] = ORT_WEB_FILES) -> bool:
    return all((VENDOR_DIR / f).is_file() for f in files)


def create_app(
    settings: WebSettings | None = None, *, service: SegmentService | None = None
) -> FastAPI:
    """Build the app. ``service`` lets callers share a loaded model between app instances."""
    settings = settings or WebSettings()
    svc = service or SegmentService(settings)
    app = FastAPI(
        title="skinscreen",
        version=__version__,
        summary="Offline skin-lesion segmentation: photo + box -> mask, contour, heatmap, features.",
        description=DISCLAIMER,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = svc
    work = WorkQueue(settings.workers, settings.queue_size)
    app.state.work_queue = work

    if settings.allowed_origins:
        if "*" in settings.allowed_origins:
            raise SkinscreenError("refusing CORS origin '*': list the exact origins to allow")
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.allowed_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        h = response.headers
        path = request.url.path
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        h.setdefault("Cross-Origin-Embedder-Policy", "require-corp")
        h.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        h.setdefault("Permissions-Policy", "geolocation=(), microphone=()")
        h.setdefault("Content-Security-Policy", DOCS_CSP if path == "/docs" else PAGE_CSP)
        if path.startswith("/api/segment"):
            h["Cache-Control"] = "no-store"
        return response

    # outermost: refuse foreign Host headers and cross-site POSTs before anything else runs
    app.add_middleware(
        HostOriginGuard,
        allowed_hosts=settings.allowed_hosts,
        allowed_origins=settings.allowed_origins,
    )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        if not vendor_present(SWAGGER_FILES):
            return HTMLResponse(
                "<!doctype html><title>skinscreen API</title><p>Swagger UI is not installed: "
                f"{FETCH_HINT}. The schema is at <a href='/openapi.json'>/openapi.json</a>.</p>"
            )
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title="skinscreen API",
            swagger_js_url="/static/vendor/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    @app.get("/api/health", response_model=Health, tags=["status"])
    def health() -> dict:
        """Liveness and what this server can do (model, assessment, on-device files)."""
        err = None
        try:
            svc.bundle  # noqa: B018 - verifies the bundle once
            present = True
        except SkinscreenError as e:
            present, err = False, public_message(str(e))
        return {
            "status": "ok",
            "version": __version__,
            "model": settings.model,
            "model_loaded": svc.loaded,
            "bundle_present": present,
            "bundle_error": err,
            "assessment_available": assessment.available(),
            "on_device_available": vendor_present(),
            "cache": svc.cache.stats(),
            "queue": work.stats(),
            "disclaimer": DISCLAIMER,
        }

    @app.get("/api/models", response_model=list[ModelInfo], tags=["models"])
    def models() -> list[dict]:
        """Model bundles on this machine; the served one lists its files for on-device mode."""
        from skinscreen.engine.bundle import list_bundles, read_manifest

        out: list[dict] = []
        served_root = None
        try:
            b = svc.bundle
            served_root = b.root.resolve()
            info = _model_info(b.manifest, b.root, served=True, variant=b.variant)
            info["box_check"] = _box_check_info(svc.predictor().box_checker)
            out.append(info)
        except SkinscreenError:
            pass
        for root in list_bundles():
            if served_root is not None and root.resolve() == served_root:
                continue
            try:
                out.append(_model_info(read_manifest(root), root, served=False))
            except SkinscreenError:
                continue
        return out

    @app.get(
        "/api/models/{model}/manifest.json",
        tags=["models"],
        responses={404: {"model": ErrorResponse}},
    )
    def manifest(model: str) -> JSONResponse:
        """The served bundle's manifest (pre/post-processing spec for the in-browser runtime)."""
        b = _served_bundle(model)
        return JSONResponse(b.manifest, headers={"Cache-Control": "no-cache"})

    @app.get(
        "/api/models/{model}/{variant}/{part}",
        tags=["models"],
        response_class=FileResponse,
        responses={404: {"model": ErrorResponse}},
    )
    def model_file(model: str, variant: str, part: str) -> FileResponse:
        """A file of the served bundle, read-only: ``part`` is ``encoder`` or ``decoder``; or the
        decoder of the served model's box check (its ``box_check`` entry in ``/api/models``)."""
        checker = _served_checker(model)
        if checker is not None:
            if part != "decoder":
                raise HTTPException(
                    404, f"only the decoder of the box check model {model} is served"
                )
            b = checker.bundle
        else:
            b = _served_bundle(model)
        files = b.manifest["variants"].get(variant, {}).get("files", {})
        if part not in files:
            raise HTTPException(404, f"no file {part!r} in variant {variant!r} of {model}")
        info = files[part]
        path = (b.root / info["path"]).resolve()
        if b.root.resolve() not in path.parents or not path.is_file():
            raise HTTPException(404, f"bundle file {info['path']} not found")
        return FileResponse(
            path,
            media_type="application/octet-stream",
            headers={"Cache-Control": "no-cache", "ETag": f'"{info["sha256"]}"'},
        )

    @app.post(
        "/api/segment",
        response_model=SegmentResponse,
        tags=["segmentation"],
        openapi_extra={"requestBody": SEGMENT_BODY},
        responses=ERRORS,
    )
    async def segment(request: Request) -> dict:
        """Segment the lesion inside ``box`` (or found automatically) in the uploaded photo.

        The photo is held in memory only for this request (and its embedding in an in-memory
        LRU keyed by the upload's sha256, so the next box on the same photo skips the encoder).
        """
        with work.admit():  # 503 + Retry-After at once when the queue is full
            form = await read_segment_form(request, settings.max_upload_bytes)
            try:
                return await work.run(request, svc.segment, form.image, form.box, form.features)
            except ClientGone:  # nobody is listening: the work was dropped before it ran
                return Response(status_code=499)

    def _served_checker(model: str):
        """The served predictor's box checker when ``model`` is its check model, else None."""
        try:
            checker = svc.predictor().box_checker
        except SkinscreenError:
            return None
        if checker is None or checker.bundle is None or checker.check_model != model:
            return None
        return checker

    def _served_bundle(model: str):
        try:
            b = svc.bundle
        except SkinscreenError as e:
            raise HTTPException(503, f"model not available: {public_message(str(e))}") from None
        if model != b.model:
            raise HTTPException(404, f"this server serves model {b.model!r}, not {model!r}")
        return b

    return app


def _box_check_info(checker) -> dict | None:
    """``/api/models``' ``box_check`` entry for the served model (None: no check)."""
    if checker is None or checker.bundle is None:
        return None
    b = checker.bundle
    f = b.manifest["variants"][b.variant]["files"]["decoder"]
    return {
        "model": checker.check_model,
        "agreement_min": checker.agreement_min,
        "file": ModelFile(
            part="decoder",
            url=f"/api/models/{checker.check_model}/{b.variant}/decoder",
            bytes=int(f["bytes"]),
            sha256=f["sha256"],
        ).model_dump(),
    }


def _model_info(manifest: dict, root: Path, *, served: bool, variant: str | None = None) -> dict:
    name = manifest["model"]
    v = variant or manifest["default_variant"]
    vinfo = manifest["variants"][v]
    files = []
    if served:
        files = [
            ModelFile(
                part=part,
                url=f"/api/models/{name}/{v}/{part}",
                bytes=int(f["bytes"]),
                sha256=f["sha256"],
            )
            for part, f in vinfo["files"].items()
        ]
    return {
        "name": name,
        "served": served,
        "path": root.name,  # never the local path: the page and other clients do not need it
        "default_variant": manifest["default_variant"],
        "variant": v if served else None,
        "variants": list(manifest["variants"]),
        "size_bytes": sum(int(f["bytes"]) for f in vinfo["files"].values()),
        "manifest_url": f"/api/models/{name}/manifest.json" if served else None,
        "files": files,
        "accuracy": vinfo.get("accuracy"),
        "parity": manifest.get("parity"),
    }
