"""Frames from a video file or a camera (OpenCV), as ``(H, W, 3)`` uint8 RGB arrays.

A camera delivers frames at its own pace whether we keep up or not: :class:`CameraReader` reads
it on a background thread and keeps only the newest frame, counting the frames it had to throw
away (dropped, never lag). A video file is read frame by frame; :func:`skinscreen.stream.runner`
can replay it at its nominal rate to behave like a camera.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from skinscreen.errors import SkinscreenError

#: Frame rate assumed when a file or camera does not report one.
DEFAULT_FPS = 30.0


@dataclass(frozen=True)
class SourceInfo:
    """What we know about a source before reading it.

    Attributes:
        name: the path or ``camera:<index>``.
        is_camera: True for a camera index.
        fps: nominal frames per second (:data:`DEFAULT_FPS` when unknown).
        frame_count: frames in a file (None for a camera or when unknown).
        size_hw: (H, W) of the frames as delivered (before any downscaling).
    """

    name: str
    is_camera: bool
    fps: float
    frame_count: int | None
    size_hw: tuple[int, int]

    def to_json_dict(self) -> dict:
        return {
            "name": self.name,
            "is_camera": self.is_camera,
            "fps": round(self.fps, 3),
            "frame_count": self.frame_count,
            "size": [self.size_hw[1], self.size_hw[0]],
        }


def downscale(frame: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink an ``(H, W, 3)`` frame so its longest side is at most ``max_side`` (INTER_AREA)."""
    if not max_side or max(frame.shape[:2]) <= max_side:
        return frame
    s = max_side / max(frame.shape[:2])
    size = (max(1, round(frame.shape[1] * s)), max(1, round(frame.shape[0] * s)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def scale_factor(size_hw: tuple[int, int], max_side: int | None) -> float:
    """Frame pixels after :func:`downscale` per source pixel."""
    if not max_side or max(size_hw) <= max_side:
        return 1.0
    return max_side / max(size_hw)


class VideoSource:
    """Open ``source`` (a video file path, or a camera index such as ``"0"``) with OpenCV.

    Raises :class:`SkinscreenError` with a fix when it cannot be opened. Iterate with
    :meth:`read`; call :meth:`close` (or use it as a context manager) when done.
    """

    def __init__(self, source: str | int):
        text = str(source).strip()
        self.is_camera = text.isdigit()
        if self.is_camera:
            self.name = f"camera:{int(text)}"
            cap = cv2.VideoCapture(int(text))
            if not cap.isOpened():
                cap.release()
                raise SkinscreenError(
                    f"cannot open camera {int(text)}: check that a camera is connected, that no "
                    "other app uses it and that this process may access it (or give a video file)"
                )
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        else:
            path = Path(text)
            self.name = str(path)
            if not path.is_file():
                raise SkinscreenError(
                    f"video file {path} not found: give a video file path or a camera index (0, 1, ...)"
                )
            cap = cv2.VideoCapture(str(path))
            if not cap.isOpened():
                cap.release()
                raise SkinscreenError(
                    f"OpenCV cannot read {path}: unsupported or corrupt video; convert it to MP4, "
                    f"e.g. ffmpeg -i {path.name} -c:v libx264 out.mp4"
                )
        self._cap = cap
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise SkinscreenError(
                f"{self.name} delivered no frame: the video is empty or the camera is not ready"
            )
        self._first: np.ndarray | None = cv2.cvtColor(first, cv2.COLOR_BGR2RGB)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.info = SourceInfo(
            name=self.name,
            is_camera=self.is_camera,
            fps=fps if math.isfinite(fps) and 1.0 <= fps <= 1000.0 else DEFAULT_FPS,
            frame_count=None if self.is_camera or count <= 0 else count,
            size_hw=self._first.shape[:2],
        )

    def read(self) -> np.ndarray | None:
        """The next frame (RGB) or None at the end of the stream."""
        if self._first is not None:
            f, self._first = self._first, None
            return f
        ok, frame = self._cap.read()
        if not ok or frame is None:
            return None
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CameraReader:
    """Read a :class:`VideoSource` on a thread, keeping only the newest frame.

    :meth:`latest` blocks until a frame newer than the last one taken is there and returns
    ``(frame, skipped)`` where ``skipped`` counts the frames that arrived meanwhile and were
    thrown away; ``(None, skipped)`` once the source has ended.
    """

    def __init__(self, source: VideoSource):
        self._source = source
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._arrived = 0  # frames read so far
        self._taken = 0  # index of the next frame after the last one taken
        self._ended = False
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="skinscreen-camera", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            frame = self._source.read()
            with self._cond:
                if frame is None:
                    self._ended = True
                    self._cond.notify_all()
                    return
                self._frame = frame
                self._arrived += 1
                self._cond.notify_all()

    def latest(self, timeout_s: float = 10.0) -> tuple[np.ndarray | None, int]:
        with self._cond:
            if not self._cond.wait_for(
                lambda: self._arrived > self._taken or self._ended, timeout=timeout_s
            ):
                raise SkinscreenError(
                    f"{self._source.name} sent no frame for {timeout_s:.0f} s: is the camera still on?"
                )
            if self._arrived == self._taken:
                return None, 0
            skipped = self._arrived - self._taken - 1
            self._taken = self._arrived
            return self._frame, skipped

    def stop(self) -> None:
        self._stop = True
        self._thread.join(timeout=2.0)
