"""Where skinscreen keeps model bundles: a per-user cache, overridable with ``SKINSCREEN_HOME``."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The skinscreen data directory (``$SKINSCREEN_HOME`` or the platform's user cache dir)."""
    env = os.environ.get("SKINSCREEN_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("skinscreen", appauthor=False))


def bundles_dir() -> Path:
    """Directory holding one sub-directory per exported model bundle."""
    return home() / "bundles"


def bundle_dir(name: str) -> Path:
    """Default location of the bundle for model ``name`` (e.g. ``litemedsam``)."""
    return bundles_dir() / name
