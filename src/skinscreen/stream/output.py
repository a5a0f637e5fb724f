"""Stream outputs, written all-or-nothing: annotated video, per-frame JSONL, summary, best frame.

Everything is first written to hidden temporary files in the output folder; :meth:`commit` renames
them into place at the end, :meth:`abort` removes them, so a failed or interrupted run never leaves
half-written results behind.

Files (in ``out_dir``):

- ``annotated.mp4``: every frame with the mask fill, contour, status and FPS drawn (MPEG-4 Part 2,
  plays in browsers and VLC);
- ``frames.jsonl``: one JSON object per frame (:meth:`FrameResult.to_json_dict`);
- ``summary.json``: the run's figures;
- ``best_frame.png``: the frame picked for the still assessment (as captured, no overlay).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from skinscreen.errors import SkinscreenError
from skinscreen.stream.annotate import annotate
from skinscreen.stream.tracker import FrameResult

VIDEO_NAME = "annotated.mp4"
FRAMES_NAME = "frames.jsonl"
SUMMARY_NAME = "summary.json"
BEST_NAME = "best_frame.png"


class StreamOutputs:
    """Stage the outputs of one run in ``out_dir``; nothing is visible until :meth:`commit`."""

    def __init__(self, out_dir: Path, fps: float, *, video: bool = True):
        self.out_dir = Path(out_dir)
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SkinscreenError(f"cannot create output folder {out_dir}: {e.strerror}") from None
        self.fps = fps
        self._video = video
        self._writer: cv2.VideoWriter | None = None
        self._staged: dict[Path, str] = {}
        self._jsonl = open(self._stage(self.out_dir / FRAMES_NAME), "w", encoding="utf-8")  # noqa: SIM115

    def _stage(self, final: Path) -> str:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{final.stem}.", suffix=f".part{final.suffix}", dir=self.out_dir
        )
        os.close(fd)
        self._staged[final] = tmp
        return tmp

    def write(self, frame: np.ndarray | None, result: FrameResult, fps_now: float | None) -> None:
        """Add one frame (``frame`` None: a camera frame dropped unseen, JSONL only)."""
        self._jsonl.write(json.dumps(result.to_json_dict()) + "\n")
        if not self._video or frame is None:
            return
        if self._writer is None:
            h, w = frame.shape[:2]
            path = self._stage(self.out_dir / VIDEO_NAME)
            self._writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise SkinscreenError(
                    "OpenCV cannot write MP4 video here (no mp4v encoder): install "
                    "opencv-python-headless from PyPI"
                )
        img = annotate(frame, result, fps=fps_now)
        self._writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))

    def commit(self, summary: dict, best_frame: np.ndarray | None = None) -> dict[str, str]:
        """Write the summary (and best frame), then move every file into place.

        Returns ``{kind: path}`` of the files written.
        """
        from skinscreen.io.write import png_bytes

        self._close()
        if best_frame is not None:
            with open(self._stage(self.out_dir / BEST_NAME), "wb") as f:
                f.write(png_bytes(best_frame))
        names = {
            "video": self.out_dir / VIDEO_NAME,
            "frames": self.out_dir / FRAMES_NAME,
            "best_frame": self.out_dir / BEST_NAME,
        }
        written = {k: str(p) for k, p in names.items() if p in self._staged}
        written["summary"] = str(self.out_dir / SUMMARY_NAME)
        summary = {**summary, "outputs": written}
        with open(self._stage(self.out_dir / SUMMARY_NAME), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
            f.write("\n")
        for final, tmp in self._staged.items():
            os.replace(tmp, final)
        self._staged.clear()
        return written

    def abort(self) -> None:
        """Remove every staged file (nothing half-written stays)."""
        self._close()
        for tmp in self._staged.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._staged.clear()

    def _close(self) -> None:
        if not self._jsonl.closed:
            self._jsonl.close()
        if self._writer is not None:
            self._writer.release()
            self._writer = None
