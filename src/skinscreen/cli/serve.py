"""``skinscreen serve``: the local web app (FastAPI + one page; server or on-device inference)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from skinscreen.cli.common import (
    model_options,
    selected_box_check,
    selected_commercial_only,
    selected_engine,
)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _allowed_hosts(host: str) -> tuple[str, ...] | None:
    """Host headers to answer: the loopback names, plus ``host`` when it is a specific loopback
    address; None (any) when the user binds a network interface on purpose."""
    from skinscreen.web.guard import LOCAL_HOSTS

    if not _is_loopback(host):
        return None
    return tuple(dict.fromkeys((*LOCAL_HOSTS, host.lower(), f"[{host}]" if ":" in host else host)))


@click.command(
    "serve",
    epilog=(
        "Examples:\n\n"
        "  skinscreen serve                      # http://127.0.0.1:8000 on this computer only\n\n"
        "  skinscreen serve --host 0.0.0.0       # also reachable from a phone on the same network\n\n"
        "The page's on-device mode needs the onnxruntime-web files: scripts/fetch_web_vendor.sh "
        "(run once; `make demo` does it). API docs: /docs, schema: /openapi.json."
    ),
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port."
)
@click.option(
    "--max-upload-mb",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0.1, 500),
    help="Largest accepted upload (HTTP 413 above).",
)
@click.option(
    "--max-megapixels",
    default=50.0,
    show_default=True,
    type=click.FloatRange(0.01, 120),
    help="Largest accepted photo in megapixels (HTTP 413 above).",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    metavar="ORIGIN",
    help="Allow cross-origin calls from this exact origin (repeatable; '*' is refused).",
)
@click.option(
    "--queue-size",
    default=4,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="Model requests that may wait while one runs; more get HTTP 503 + Retry-After.",
)
@model_options
def command(
    host: str,
    port: int,
    max_upload_mb: float,
    max_megapixels: float,
    cors_origins: tuple[str, ...],
    queue_size: int,
    model: str,
    variant: str | None,
    bundle_dir: Path | None,
    threads: int | None,
) -> None:
    """Run the local web app: open the printed address, take or pick a photo, drag a box.

    Photos are processed in memory and never written anywhere. Binds 127.0.0.1 (this computer
    only) unless --host says otherwise. A screening aid, never a diagnosis.
    """
    from skinscreen.disclaimer import DISCLAIMER
    from skinscreen.errors import MissingExtraError, SkinscreenError

    try:
        import uvicorn

        from skinscreen.web import WebSettings, create_app
        from skinscreen.web.app import vendor_present
    except ImportError as e:
        raise MissingExtraError("web", f"skinscreen serve ({e.name} is missing)") from None

    if "*" in cors_origins:
        raise SkinscreenError("refusing --cors-origin '*': name the exact origins to allow")
    settings = WebSettings(
        model=model,
        variant=variant,
        bundle_dir=bundle_dir,
        threads=threads,
        engine=selected_engine(),
        box_check=selected_box_check(),
        commercial_only=selected_commercial_only(),
        max_upload_bytes=int(max_upload_mb * 2**20),
        max_pixels=int(max_megapixels * 1e6),
        allowed_origins=tuple(cors_origins),
        allowed_hosts=_allowed_hosts(host),
        queue_size=queue_size,
    )
    app = create_app(settings)
    service = app.state.service
    click.echo(f"loading model {model}...", err=True)
    service.load()  # a missing bundle is a one-line error here, before we listen
    b = service.bundle
    click.echo(f"model {b.model} ({b.variant}, {service.engine}) from {b.root}", err=True)
    if not vendor_present():
        click.echo(
            "note: on-device mode is off: run scripts/fetch_web_vendor.sh to install onnxruntime-web",
            err=True,
        )
    if not _is_loopback(host):
        click.echo(
            f"warning: listening on {host}: anyone on your network can reach this server", err=True
        )
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"skinscreen web app: http://{shown}:{port}/  (Ctrl+C to stop)", err=True)
    click.echo(DISCLAIMER, err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
