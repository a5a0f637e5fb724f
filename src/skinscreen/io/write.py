"""Writing result files all-or-nothing: nothing half-written when a later step fails."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def png_bytes(array: np.ndarray) -> bytes:
    """Encode an ``(H, W)`` uint8/bool or ``(H, W, 3)`` uint8 array as PNG bytes."""
    a = np.where(array, 255, 0).astype(np.uint8) if array.dtype == bool else array
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", optimize=False, compress_level=3)
    return buf.getvalue()


def write_files_atomic(files: dict[Path, bytes]) -> None:
    """Write every ``path -> bytes`` pair, or none of them.

    Each file is first written to a temporary file in its target directory; only when all are
    written are they renamed into place. On error the temporaries are removed.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are ordinary user files
            staged.append((tmp, path))
        for tmp, path in staged:
            os.replace(tmp, path)
        staged = []
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
