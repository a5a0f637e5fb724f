"""Local web app: a FastAPI server and a one-page UI (server or on-device inference).

``create_app()`` builds the ASGI app; ``skinscreen serve`` runs it with uvicorn on 127.0.0.1.
FastAPI is imported only when the app is built, so ``import skinscreen.web`` stays light.
"""

from __future__ import annotations

from skinscreen.web.settings import WebSettings

__all__ = ["WebSettings", "create_app"]


def create_app(settings: WebSettings | None = None, **kwargs):
    """Build the FastAPI app (see :func:`skinscreen.web.app.create_app`)."""
    from skinscreen.web.app import create_app as _create

    return _create(settings, **kwargs)
