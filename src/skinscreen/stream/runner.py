"""The frame loop: read a source, feed the tracker, drop frames rather than lag, summarise.

Three pacing modes:

- a video file, not real time: every frame is processed as fast as the CPU allows (offline
  analysis; the effective FPS is the throughput);
- a video file in real time: the file is replayed like a camera at its nominal frame rate; a
  frame whose time has already passed by more than one frame interval when the loop reaches it
  is dropped (``tracker.skip``), so the output never lags;
- a camera: a reader thread keeps only the newest frame (:class:`~.source.CameraReader`); the
  frames that arrived while the previous one was being processed are dropped.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from skinscreen.stream.source import CameraReader, VideoSource, downscale
from skinscreen.stream.tracker import FrameResult, LesionTracker

#: ``on_frame(frame_rgb, result, fps_now)`` called for every frame, processed or dropped
#: (``frame_rgb`` is None for a camera frame that was dropped before it was even taken).
FrameCallback = Callable[[np.ndarray | None, FrameResult, float | None], None]


@dataclass
class RunSummary:
    """What a stream run did (times are wall-clock seconds)."""

    frames: int = 0
    processed: int = 0
    dropped: int = 0
    wall_s: float = 0.0
    interrupted: bool = False

    @property
    def effective_fps(self) -> float:
        """Processed frames per second of wall time (reading and writing included)."""
        return self.processed / self.wall_s if self.wall_s > 0 else 0.0


class FpsMeter:
    """Frames per second over the last ``window`` processed frames."""

    def __init__(self, window: int = 15, clock: Callable[[], float] = time.perf_counter):
        self._times: deque[float] = deque(maxlen=window + 1)
        self._clock = clock

    def tick(self) -> float | None:
        self._times.append(self._clock())
        if len(self._times) < 2:
            return None
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else None


def run_stream(
    source: VideoSource,
    tracker: LesionTracker,
    *,
    realtime: bool = False,
    max_side: int | None = None,
    max_frames: int | None = None,
    on_frame: FrameCallback | None = None,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> RunSummary:
    """Run ``tracker`` over ``source`` until it ends, ``max_frames`` frames or Ctrl-C.

    Args:
        realtime: drop frames rather than lag (always true for a camera).
        max_side: downscale frames so their longest side is at most this (px) first.
        max_frames: stop after this many frames (processed + dropped).
        on_frame: called with each (downscaled) frame, its result and the current FPS.
        clock, sleep: injectable for tests.
    """
    summary = RunSummary()
    fps_meter = FpsMeter(clock=clock)
    interval = 1.0 / source.info.fps
    t_start = clock()
    reader = CameraReader(source) if source.is_camera else None

    def handle(frame: np.ndarray | None, result: FrameResult, fps_now: float | None) -> None:
        summary.frames += 1
        if result.dropped:
            summary.dropped += 1
        else:
            summary.processed += 1
        if on_frame is not None:
            on_frame(frame, result, fps_now)

    try:
        index = 0
        while max_frames is None or summary.frames < max_frames:
            if reader is not None:
                frame, skipped = reader.latest()
                for _ in range(skipped):
                    if max_frames is not None and summary.frames >= max_frames:
                        break
                    handle(None, tracker.skip(clock() - t_start), None)
                    index += 1
                if frame is None or (max_frames is not None and summary.frames >= max_frames):
                    break
                ts = clock() - t_start
            else:
                frame = source.read()
                if frame is None:
                    break
                ts = index * interval
            frame = downscale(frame, max_side)
            if reader is None and realtime:
                now = clock() - t_start
                if now > ts + interval:  # more than one frame behind: drop this one
                    r = tracker.skip(ts)
                    handle(frame, r, None)
                    index += 1
                    continue
                if now < ts:  # ahead of the camera clock: a camera could not deliver it yet
                    sleep(ts - now)
            r = tracker.feed(frame, timestamp_s=ts)
            handle(frame, r, fps_meter.tick())
            index += 1
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if reader is not None:
            reader.stop()
        summary.wall_s = clock() - t_start
    return summary
