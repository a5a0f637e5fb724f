"""Track a skin lesion through the frames of a video or camera feed.

:class:`LesionTracker` is what an app's frame loop calls: ``result = tracker.feed(frame)`` gives
the mask, contour polygon, SVG path, area and box to draw over that frame.

How it keeps the encoder (the expensive part) off most frames:

- Every frame gets a grayscale thumbnail; the camera's global motion since the last *key frame*
  (the last frame the encoder ran on) is estimated on thumbnails (phase correlation + ECC affine,
  :mod:`skinscreen.stream.motion`).
- While the aligned content still matches (ECC correlation), the zoom has not changed much, the
  lesion stays inside what the key frame saw and the key is not too old, the key frame's
  probability map is *warped* into the current frame with that motion: neither the encoder nor
  the decoder runs. (Decoding the key's embedding again with the box mapped into the key frame
  would give the very same logits, so we warp the cached probability instead.) A box the user
  draws with :meth:`LesionTracker.set_box` on an unchanged view is decoded on the key's embedding
  (box mapped into the key frame, mask warped back): decoder only.
- Otherwise the encoder runs on the current frame. The box prompt is the key's prompt carried
  through the camera motion, grown where the predicted mask reaches it (and to the whole lesion
  as last seen while it enters the view): deriving each box only from the last mask would let
  the mask shrink onto the lesion's core within a few frames.
- Temporal smoothing happens at key frames, in motion-compensated coordinates: the new
  probability map is averaged with the previous one warped onto the new frame (EMA), so the
  overlay does not flicker between key frames and does not lag behind camera motion. When the
  two disagree (real change, re-acquisition) the new map replaces the old one.
- Lost and found: when the predicted lesion has left the view the tracker says ``lost`` and keeps
  following the camera motion; when the lesion is predicted back in view it runs the encoder
  there and checks the result (recovered). With no usable prediction it searches with the
  automatic mode (``predictor.predict()`` without a box: :mod:`skinscreen.auto` when installed,
  else the full frame as the box) every ``search_every`` frames, and only accepts a find that
  looks like the lesion it lost (size, darker than the surrounding skin).

Coordinates: frames ``(H, W, 3)`` uint8 RGB; masks ``(H, W)`` bool; boxes XYXY ``[x0, y0, x1,
y1]`` in the pixels of the frame they belong to; affines ``(2, 3)`` key frame -> current frame.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from skinscreen.errors import PromptError, SkinscreenError
from skinscreen.postprocess.mask import outer_contour, svg_path
from skinscreen.preprocess.transforms import expand_box
from skinscreen.stream import motion as mo
from skinscreen.stream.quality import BestFramePicker, FrameQuality, frame_quality

TRACKING, LOST, DROPPED = "tracking", "lost", "dropped"


@dataclass(frozen=True)
class TrackerConfig:
    """Tuning of :class:`LesionTracker` (defaults are what the docs' benchmark used).

    Attributes:
        box_margin: boxes made from a mask are its tight box grown by this fraction per side
            (after a find or a re-acquisition, and when a mask outgrows the carried prompt).
        max_skip: most frames in a row without the encoder while tracking (0: encoder on every
            frame, the "full processing" reference).
        min_correlation: ECC correlation of the aligned thumbnails below which the content is
            considered changed (encoder runs).
        max_zoom_change: zoom factor since the key frame beyond which the encoder runs (the key's
            256-px model input would be upsampled too much).
        smoothing: weight of the new probability map at a key frame (1 = no smoothing).
        smooth_min_dice: agreement (Dice) between new and previous masks needed to smooth;
            below it the new map replaces the old one (no lag on a real change).
        lost_fraction: predicted visible share of the lesion below which it is lost.
        reacquire_fraction: predicted visible share at which a lost lesion is looked for again.
        min_area_frac: masks smaller than this share of the frame count as empty.
        max_area_frac: masks larger than this share of the frame are implausible.
        accept_dice: least Dice between an encoder result and the motion prediction to accept it.
        search_every: when lost with no usable prediction, run the automatic search every N frames.
        memory_frames: how long (frames) a lost lesion's position is predicted by dead reckoning.
        refine: after an automatic find or a re-acquisition, run a second decoder pass with the
            box of the first mask when the boxes differ. (Tracking encodes never do: deriving
            each box from the last mask alone lets the mask shrink onto the lesion's core.)
        thumb_side: thumbnail size for motion and frame difference.
        box_check: run the predictor's box check (:mod:`skinscreen.box_check`) on
            the tracker's boxes; off by default: they come from the previous mask, not from a
            hand, and a decision flipping between frames would make the outline jump.
        background_encoder: run the encoder (and its decoder calls) on a worker thread: frames
            keep flowing through the cheap motion path meanwhile and the new result is taken in
            when it is ready (motion-compensated to the frame of the moment). For live video;
            off by default (offline analysis processes every frame completely, in order).
    """

    box_margin: float = 0.05
    max_skip: int = 30
    min_correlation: float = 0.75
    max_zoom_change: float = 1.25
    smoothing: float = 0.5
    smooth_min_dice: float = 0.8
    lost_fraction: float = 0.1
    reacquire_fraction: float = 0.3
    min_area_frac: float = 0.001
    max_area_frac: float = 0.8
    accept_dice: float = 0.5
    search_every: int = 5
    memory_frames: int = 150
    refine: bool = True
    thumb_side: int = mo.THUMB_SIDE
    background_encoder: bool = False
    box_check: bool = False

    @classmethod
    def full_processing(cls) -> TrackerConfig:
        """Reference mode: encoder on every frame, no smoothing (same boxes and checks)."""
        return cls(max_skip=0, smoothing=1.0)


@dataclass
class FrameResult:
    """What the tracker produced for one frame (pixel coordinates of that frame).

    Attributes:
        index: frame number in the stream (0-based, dropped frames included).
        timestamp_s: stream time of the frame, if known.
        state: ``"tracking"``, ``"lost"`` or ``"dropped"`` (not processed).
        mask: ``(H, W)`` bool lesion mask (all False when lost; None when dropped).
        probability: ``(H, W)`` float32 smoothed lesion probability (None when dropped).
        polygon: ``(N, 2)`` outer contour ``[x, y]``; ``svg_path`` the same as SVG path data.
        area_px: mask area (pixels).
        box: XYXY box of the mask, or None.
        encoder_ran: whether the image encoder ran on this frame.
        decoder_runs: decoder calls made for this frame (0 when the key result was warped).
        dropped: the frame was skipped to keep up with real time.
        event: ``"init"``, ``"lost"``, ``"recovered"``, ``"box"`` (user box) or None.
        reason: why the encoder ran (``init``, ``content``, ``zoom``, ``coverage``,
            ``refresh``, ``every-frame``, ``motion``, ``reacquire``, ``search``) or ``skip``.
        change: mean absolute gray difference (0-255) to the previous frame's thumbnail.
        correlation: ECC correlation to the key frame after alignment (None without a key).
        motion: affine key -> this frame (``(2, 3)``), or None.
        iou_prediction: the decoder's IoU estimate for the key result in use.
        outline_quality: the outline-quality estimate of the key result in use
            (:mod:`skinscreen.outline_quality`; predicted_jaccard, p_failure, check_outline),
            or None.
        quality: :class:`~skinscreen.stream.quality.FrameQuality` of this frame.
        timings_ms: ``motion``, ``encoder``, ``decoder``, ``postprocess``, ``total``.
        note: why an encoder result was rejected, if it was.
    """

    index: int
    timestamp_s: float | None
    state: str
    mask: np.ndarray | None
    probability: np.ndarray | None
    polygon: np.ndarray
    svg_path: str
    area_px: int
    box: np.ndarray | None
    encoder_ran: bool = False
    decoder_runs: int = 0
    dropped: bool = False
    event: str | None = None
    reason: str = "skip"
    change: float = 0.0
    correlation: float | None = None
    motion: np.ndarray | None = None
    iou_prediction: float | None = None
    outline_quality: dict | None = None
    quality: FrameQuality | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    note: str | None = None

    @property
    def lost(self) -> bool:
        return self.state == LOST

    def to_json_dict(self) -> dict:
        """JSON-ready record (no pixel arrays; polygon rounded to 0.1 px)."""
        d: dict = {
            "index": self.index,
            "timestamp_s": None if self.timestamp_s is None else round(self.timestamp_s, 4),
            "state": self.state,
            "dropped": self.dropped,
        }
        if self.dropped:
            return d
        d.update(
            {
                "event": self.event,
                "encoder_ran": self.encoder_ran,
                "decoder_runs": self.decoder_runs,
                "reason": self.reason,
                "area_px": self.area_px,
                "box": None if self.box is None else [round(float(v), 1) for v in self.box],
                "polygon": [[round(float(x), 1), round(float(y), 1)] for x, y in self.polygon],
                "svg_path": self.svg_path,
                "change": round(self.change, 3),
                "correlation": None if self.correlation is None else round(self.correlation, 4),
                "motion": None if self.motion is None else np.round(self.motion, 4).tolist(),
                "iou_prediction": None
                if self.iou_prediction is None
                else round(self.iou_prediction, 4),
                "outline_quality": None
                if self.outline_quality is None
                else {
                    k: self.outline_quality[k]
                    for k in ("predicted_jaccard", "p_failure", "check_outline")
                },
                "quality": None if self.quality is None else self.quality.to_json_dict(),
                "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
                "note": self.note,
            }
        )
        return d


@dataclass
class TrackerStats:
    """Counters over a stream."""

    frames: int = 0
    processed: int = 0
    dropped: int = 0
    encoder_runs: int = 0
    decoder_runs: int = 0
    lost_events: int = 0
    recovered_events: int = 0
    tracking_frames: int = 0
    processing_s: float = 0.0

    @property
    def encoder_skip_rate(self) -> float:
        """Share of processed frames on which the encoder did not run."""
        return 0.0 if self.processed == 0 else 1.0 - self.encoder_runs / self.processed

    def to_json_dict(self) -> dict:
        return {
            "frames": self.frames,
            "processed": self.processed,
            "dropped": self.dropped,
            "encoder_runs": self.encoder_runs,
            "decoder_runs": self.decoder_runs,
            "encoder_skip_rate": round(self.encoder_skip_rate, 4),
            "lost_events": self.lost_events,
            "recovered_events": self.recovered_events,
            "tracking_frames": self.tracking_frames,
            "processing_s": round(self.processing_s, 3),
        }


@dataclass
class _Appearance:
    """What the lesion looked like: for checking that a find is the lesion we lost."""

    area_px: float
    contrast_l: float  # mean L* of a ring around the lesion minus mean L* inside (lesions: > 0)


@dataclass
class _Key:
    """The last frame the encoder ran on, and its (smoothed) result in its own pixels."""

    index: int
    thumb: mo.Thumb
    encoding: object  # skinscreen.predictor.ImageEncoding
    prob: np.ndarray  # (H, W) float32, smoothed, key frame pixels
    mask: np.ndarray  # (H, W) bool
    area: int
    cut: bool  # the mask touches the key frame's border: the key saw only part of the lesion
    iou: float
    prompt: np.ndarray  # XYXY box prompt the key's mask came from, key pixels
    quality: dict | None = None  # Segmentation.outline_quality of the key's outline


@dataclass
class _Memory:
    """The lesion as last seen whole (not cut by the frame border): to find it again.

    ``to_key`` maps the memory frame's pixels to the current key frame's, so the whole lesion
    can be predicted in any frame (``key -> frame`` after ``to_key``), in view or not.
    """

    prob: np.ndarray  # (H, W) float32, memory frame pixels
    mask: np.ndarray  # (H, W) bool
    area: int
    box: np.ndarray  # XYXY, memory frame pixels
    appearance: _Appearance
    to_key: np.ndarray  # (2, 3)
    prompt: np.ndarray  # XYXY box prompt that produced the mask, memory frame pixels


def _touches_border(mask: np.ndarray, margin: int = 2) -> bool:
    return bool(
        mask[:margin].any()
        or mask[-margin:].any()
        or mask[:, :margin].any()
        or mask[:, -margin:].any()
    )


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.count_nonzero(a & b)
    total = np.count_nonzero(a) + np.count_nonzero(b)
    return 1.0 if total == 0 else 2.0 * inter / total


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return 0.0 if union <= 0 else float(inter / union)


def mask_of(prob: np.ndarray) -> np.ndarray:
    """``(H, W)`` probability -> lesion mask: pixels over 0.5, largest region, holes filled.

    The same clean-up as the predictor's (largest component, hole filling), done with one
    ``cv2.findContours`` and a filled ``drawContours`` of the largest outer contour, which is
    several times faster than labelling plus ``binary_fill_holes`` on every frame.
    """
    m = (prob > 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return m.astype(bool)
    out = np.zeros_like(m)
    cv2.drawContours(out, [max(contours, key=cv2.contourArea)], -1, 1, thickness=cv2.FILLED)
    return out.astype(bool)


def box_of_mask(mask: np.ndarray) -> np.ndarray | None:
    """Tight XYXY box of a ``(H, W)`` mask (x1, y1 one past the last pixel), None when empty."""
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    return None if w == 0 else np.array([x, y, x + w, y + h], dtype=np.float64)


def appearance(frame: np.ndarray, mask: np.ndarray) -> _Appearance:
    """Lesion area and lightness contrast to a surrounding ring (CIE L*, 0-100)."""
    area = float(mask.sum())
    r = max(3, int(round(0.15 * math.sqrt(max(area, 1.0)))))
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0
    ring &= ~mask
    if not mask.any() or not ring.any():
        return _Appearance(area, 0.0)
    light = cv2.cvtColor(frame, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32) * (100 / 255)
    return _Appearance(area, float(light[ring].mean() - light[mask].mean()))


@dataclass
class _FrameContext:
    frame: np.ndarray
    thumb: mo.Thumb
    est: mo.MotionEstimate | None  # key -> this frame
    timings: dict[str, float]
    timestamp_s: float | None = None
    index: int = 0
    note: str | None = None
    encoded: bool = False
    key_replaced: bool = False


@dataclass
class _ModelResult:
    """What the model calls of one job returned (worker side: no tracker state touched)."""

    enc: object  # ImageEncoding
    seg: object | None  # Segmentation (None: the automatic mode found nothing)
    prompt: np.ndarray | None
    n_dec: int
    timings: dict[str, float]
    seg2: object | None = None  # search: the refined candidate
    prompt2: np.ndarray | None = None
    note: str | None = None


@dataclass
class _Job:
    """One encoder run (plus decoder calls) on frame ``index``, sync or in the background."""

    kind: str  # "box" (decode a box prompt) or "search" (automatic mode)
    index: int
    ctx: _FrameContext  # the frame it runs on
    box: np.ndarray | None
    prediction: tuple[np.ndarray, np.ndarray] | None  # (probability, mask) by motion, frame k
    reason: str
    event: str | None
    refine: bool
    future: object | None = None  # concurrent.futures.Future in background mode
    to_latest: np.ndarray = field(default_factory=lambda: mo.IDENTITY.copy())  # frame k -> latest


@dataclass
class _Outcome:
    prob: np.ndarray  # (H, W) probability to show on this frame
    mask: np.ndarray | None = None  # mask_of(prob) when already computed
    event: str | None = None
    reason: str = "skip"
    decoder_runs: int = 0
    motion: np.ndarray | None = None


class LesionTracker:
    """Segment a lesion frame after frame, running the encoder only when the view has changed.

    Args:
        predictor: a :class:`skinscreen.predictor.LesionPredictor`.
        box: the lesion's box in the first frame (XYXY, frame pixels); ``None`` or ``"auto"``
            finds it with the automatic mode.
        config: :class:`TrackerConfig` (defaults suit a hand-held phone clip).
        pick_best: keep the best frame for the still assessment (:attr:`best`).

    Example::

        tracker = LesionTracker(LesionPredictor(), box=[120, 80, 260, 200])
        for frame in frames:                     # (H, W, 3) uint8 RGB
            r = tracker.feed(frame)
            draw(r.svg_path)                     # or r.mask / r.polygon
        tracker.stats.encoder_runs, tracker.best.index
    """

    def __init__(
        self,
        predictor,
        box: object | None = None,
        *,
        config: TrackerConfig | None = None,
        pick_best: bool = True,
    ):
        if isinstance(box, str) and box != "auto":
            raise PromptError(f"box {box!r} is not four numbers x0,y0,x1,y1 or 'auto'")
        self.predictor = predictor
        self.config = config or TrackerConfig()
        self._initial_box = None if box is None or isinstance(box, str) else box
        self._picker = BestFramePicker() if pick_best else None
        self.reset()

    # -- public state ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the stream (a new video or a new lesion); the initial box applies again."""
        self.stats = TrackerStats()
        self._index = 0
        self._hw: tuple[int, int] | None = None
        self._key: _Key | None = None
        self._memory: _Memory | None = None
        self._k2p = mo.IDENTITY.copy()  # affine key -> previous frame
        self._prev_thumb: mo.Thumb | None = None
        self._state = LOST
        self._started = False
        self._last_search = -(10**9)
        self._lost_since: int | None = None
        self._fails = 0
        self._pending_box = None if self._initial_box is None else np.asarray(self._initial_box)
        self._wait_for_job()
        self._job: _Job | None = None
        self._carry: dict = {}  # what a background job's completion adds to the current frame
        if self._picker is not None:
            self._picker.reset()

    def wait(self) -> None:
        """Block until a background encoder run has finished (it is taken in by the next
        :meth:`feed`). No-op without one."""
        self._wait_for_job()

    def close(self) -> None:
        """Wait for a background encoder run and stop its worker thread."""
        self._wait_for_job()
        executor = getattr(self, "_executor", None)
        if executor is not None:
            executor.shutdown(wait=True)
            self._executor = None

    def __enter__(self) -> LesionTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _wait_for_job(self) -> None:
        job = getattr(self, "_job", None)
        if job is not None and job.future is not None:
            job.future.exception()  # waits; errors surface when the job is taken in

    @property
    def state(self) -> str:
        """``"tracking"`` or ``"lost"``."""
        return self._state

    @property
    def best(self):
        """The best frame so far (:class:`~skinscreen.stream.quality.BestFrame`) or None."""
        return None if self._picker is None else self._picker.best

    def set_box(self, box: object) -> None:
        """The user (re)drew the lesion's box, XYXY in the pixels of the last frame fed (or of
        the first frame before any): use it from the next frame on."""
        self._pending_box = np.asarray(box, dtype=np.float64)

    def skip(self, timestamp_s: float | None = None) -> FrameResult:
        """Record a frame that was dropped (not processed) to keep up with real time."""
        r = FrameResult(
            index=self._index, timestamp_s=timestamp_s, state=DROPPED, mask=None,
            probability=None, polygon=np.zeros((0, 2)), svg_path="", area_px=0, box=None,
            dropped=True,
        )  # fmt: skip
        self._index += 1
        self.stats.frames += 1
        self.stats.dropped += 1
        return r

    # -- the frame loop --------------------------------------------------------------------------
    def feed(self, frame: np.ndarray, timestamp_s: float | None = None) -> FrameResult:
        """Process one ``(H, W, 3)`` uint8 RGB frame and return its :class:`FrameResult`."""
        t0 = time.perf_counter()
        frame = self._check_frame(frame)
        timings = {"motion": 0.0, "encoder": 0.0, "decoder": 0.0, "postprocess": 0.0}
        thumb = mo.make_thumb(frame, self.config.thumb_side)
        change = 0.0 if self._prev_thumb is None else mo.frame_difference(self._prev_thumb, thumb)
        tm = time.perf_counter()
        self._carry = {}
        if self._job is not None:
            if self._pending_box is not None:
                self._wait_for_job()  # the user's box needs the predictor: finish the job first
            self._follow_job(thumb)
        est = None
        if self._key is not None and self._prev_thumb is not None:
            est = mo.estimate_motion(self._key.thumb, self._prev_thumb, thumb, self._k2p)
        timings["motion"] = (time.perf_counter() - tm) * 1e3
        ctx = _FrameContext(frame, thumb, est, timings, timestamp_s, index=self._index)

        if self._pending_box is not None:
            out = self._user_box(ctx)
        elif not self._started:
            out = self._search(ctx, found_event="init", reason="init")
        elif self._state == TRACKING:
            out = self._track(ctx)
        else:
            out = self._lost(ctx)
        self._started = True
        return self._finish(ctx, out, change, t0)

    # -- states ----------------------------------------------------------------------------------
    def _user_box(self, ctx: _FrameContext) -> _Outcome:
        """A box from the user: decoder only on the key when the view is unchanged, else encode."""
        from skinscreen.predictor import validate_box

        box = validate_box(self._pending_box, self._hw)
        self._pending_box = None
        h, w = self._hw
        est = ctx.est
        if (
            self._key is not None
            and est is not None
            and est.refined
            and est.rho >= self.config.min_correlation
            and self._zoom_ok(est.affine)
        ):
            # the box was drawn on the previous frame: map it into the key frame and decode
            # the key's embedding; the mask is then warped onto this frame like any other
            box_key = np.clip(mo.map_box(box, mo.invert(self._k2p)), 0, [w, h, w, h])
            if box_key[2] - box_key[0] >= 2 and box_key[3] - box_key[1] >= 2:
                t = time.perf_counter()
                self.predictor.set_encoding(self._key.encoding)
                seg = self.predictor.predict(box=box_key, box_margin=0.0, box_check=self._box_check)
                ctx.timings["decoder"] += (time.perf_counter() - t) * 1e3
                key = self._key
                key.prompt = box_key
                key.prob = seg.probability.astype(np.float32)
                key.mask = mask_of(key.prob)
                key.area, key.cut = int(key.mask.sum()), _touches_border(key.mask)
                key.iou = float(seg.iou_prediction)
                key.quality = seg.outline_quality
                if key.mask.any() and not key.cut:
                    self._remember(key.prob, key.mask, self._encoding_frame(key), box_key)
                self._state = TRACKING if key.mask.any() else LOST
                return _Outcome(self._warp_key(est.affine), event="box", decoder_runs=1,
                                motion=est.affine)  # fmt: skip
        event = "box" if self._started else "init"
        job = _Job("box", self._index, ctx, box, None, "init", event, refine=False)
        return self._submit(job, meanwhile=self._empty())

    def _search(self, ctx: _FrameContext, *, found_event: str, reason: str) -> _Outcome:
        """Automatic search on this frame (encoder + ``predictor.predict()`` without a box)."""
        self._last_search = self._index
        job = _Job("search", self._index, ctx, None, None, reason, found_event, self.config.refine)
        return self._submit(job, meanwhile=self._empty())

    def _track(self, ctx: _FrameContext) -> _Outcome:
        cfg, key, est = self.config, self._key, ctx.est
        a = est.affine
        pred = self._warp_key(a)
        pred_mask = mask_of(pred)
        visible = pred_mask.sum() / max(1.0, self._full_area(a))
        if visible < cfg.lost_fraction or pred_mask.sum() < self._min_area():
            self._set_lost(event=True)
            return _Outcome(np.zeros_like(pred), event="lost", motion=a)
        reason = None
        if cfg.max_skip <= 0:
            reason = "every-frame"
        elif not est.refined and not est.step_ok:
            reason = "motion"
        elif est.refined and est.rho < cfg.min_correlation:
            reason = "content"
        elif not self._zoom_ok(a):
            reason = "zoom"
        elif self._index - key.index > cfg.max_skip:
            reason = "refresh"
        elif key.cut and self._sees_beyond_key(pred_mask, a):
            reason = "coverage"
        if reason is None or self._job is not None:  # (a background run is still busy)
            return _Outcome(pred, mask=pred_mask, motion=a)
        box = self._carry_prompt(pred_mask, a)
        expect = pred_mask
        m2f = self._mem_to_frame(a)
        if key.cut and m2f is not None:
            # the key saw part of the lesion: judge the new result against the whole of it
            whole = mo.warp(self._memory.mask.astype(np.uint8), m2f, self._hw, nearest=True) > 0
            if whole.sum() > pred_mask.sum():
                expect = whole
        job = _Job("box", self._index, ctx, box, (pred, expect), reason, None, refine=False)
        return self._submit(job, meanwhile=pred, meanwhile_mask=pred_mask)

    def _lost(self, ctx: _FrameContext) -> _Outcome:
        cfg, mem, est = self.config, self._memory, ctx.est
        motion = None if est is None else est.affine
        if self._job is not None:
            return _Outcome(self._empty(), motion=motion)
        if (
            mem is not None
            and est is not None
            and self._lost_since is not None
            and self._index - self._lost_since <= cfg.memory_frames
        ):
            m2c = mo.compose(est.affine, mem.to_key)
            pred = mo.warp(mem.prob, m2c, self._hw)
            pred_mask = mask_of(pred)
            visible = pred_mask.sum() / max(1.0, mem.area * mo.affine_scale(m2c) ** 2)
            if (
                visible >= cfg.reacquire_fraction
                and pred_mask.sum() >= self._min_area()
                and self._index - self._last_search >= 2
            ):
                # predicted back in view: look there
                self._last_search = self._index
                box = self._carry_prompt(pred_mask, est.affine)
                job = _Job("box", self._index, ctx, box, (pred, pred_mask), "reacquire",
                           "recovered", refine=cfg.refine)  # fmt: skip
                return self._submit(job, meanwhile=self._empty())
        # predicted out of view, or no prediction: search now and then, in case the
        # prediction drifted or the lesion came back some other way
        if self._index - self._last_search < cfg.search_every:
            return _Outcome(self._empty(), motion=motion)
        return self._search(ctx, found_event="recovered", reason="search")

    # -- encoder / decoder -----------------------------------------------------------------------
    def _submit(
        self, job: _Job, *, meanwhile: np.ndarray, meanwhile_mask: np.ndarray | None = None
    ) -> _Outcome:
        """Run ``job`` now (its outcome is this frame's), or start it on the worker thread and
        show ``meanwhile`` until it is done."""
        job.ctx.encoded = True
        if not self.config.background_encoder:
            return self._accept(job, self._run_job(job))
        if getattr(self, "_executor", None) is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(1, thread_name_prefix="skinscreen-encoder")
        job.future = self._executor.submit(self._run_job, job)
        self._job = job
        motion = None if job.ctx.est is None else job.ctx.est.affine
        return _Outcome(meanwhile, mask=meanwhile_mask, reason=job.reason, motion=motion)

    def _follow_job(self, thumb: mo.Thumb) -> None:
        """Background mode, every frame: follow the camera from the job's frame; take the result
        in when it is ready (the new key is its frame; the motion to now is known)."""
        job = self._job
        if self._prev_thumb is not None:
            est = mo.estimate_motion(job.ctx.thumb, self._prev_thumb, thumb, job.to_latest)
            # to_latest ends at the previous frame until the job is taken in
            latest_prev, job.to_latest = job.to_latest, est.affine
        else:
            latest_prev = job.to_latest
        if not job.future.done():
            return
        self._job = None
        res = job.future.result()
        before = self._key
        out = self._accept(job, res)
        if self._key is not before:
            self._k2p = latest_prev  # new key (the job's frame) -> previous frame
        self._carry = {
            "event": out.event,
            "decoder_runs": out.decoder_runs,
            "note": job.ctx.note,
            "timings": res.timings,
        }

    @property
    def _box_check(self) -> bool | None:
        """``predict``'s box_check: None (the predictor's own) when configured, else False."""
        return None if self.config.box_check else False

    def _run_job(self, job: _Job) -> _ModelResult:
        """The model calls of a job (worker side in background mode): encoder, then decoder."""
        p = self.predictor
        t0 = time.perf_counter()
        enc = p.encode(job.ctx.frame)
        p.set_encoding(enc)
        t1 = time.perf_counter()
        res = _ModelResult(enc, None, None, 0, {})
        if job.kind == "search":
            try:
                # the tracker judges its own outlines per frame: no abstention while searching
                res.seg = p.predict(abstain=False)
            except SkinscreenError as e:
                res.note = f"automatic mode: {e}"
            res.n_dec = 1
            if res.seg is not None:
                res.prompt = np.asarray(res.seg.box, dtype=np.float64)
                if job.refine and res.seg.mask.any():
                    box = self._box_of(res.seg.mask)
                    if _box_iou(box, res.prompt) < 0.9:
                        res.seg2, res.prompt2 = (
                            p.predict(box=box, box_margin=0.0, box_check=self._box_check),
                            box,
                        )
                        res.n_dec += 1
        else:
            # the tracker sizes its own boxes (TrackerConfig.box_margin): no predictor margin
            res.seg = p.predict(box=job.box, box_margin=0.0, box_check=self._box_check)
            res.prompt, res.n_dec = job.box, 1
            if job.refine and res.seg.mask.any():
                box2 = self._box_of(res.seg.mask)
                if _box_iou(box2, job.box) < 0.9:
                    res.seg = p.predict(box=box2, box_margin=0.0, box_check=self._box_check)
                    res.prompt = box2
                    res.n_dec += 1
        t2 = time.perf_counter()
        res.timings = {"encoder": (t1 - t0) * 1e3, "decoder": (t2 - t1) * 1e3}
        return res

    def _accept(self, job: _Job, res: _ModelResult) -> _Outcome:
        """Check a job's result (it must look like the lesion; with a motion prediction, agree
        with it) and make its frame the key frame, or reject it. Returns the job frame's outcome."""
        cfg, ctx = self.config, job.ctx
        if not cfg.background_encoder:
            for k, v in res.timings.items():
                ctx.timings[k] += v
        if job.kind == "search":
            expected = self._expected_area(ctx)
            seg, prompt = res.seg, res.prompt
            if res.note:
                ctx.note = res.note
            if seg is None or not self._plausible(seg.mask, ctx, identify=True, expected=expected):
                self._set_lost(event=False)
                return _Outcome(self._empty(), reason=job.reason, decoder_runs=res.n_dec)
            if res.seg2 is not None and self._plausible(
                res.seg2.mask, ctx, identify=True, expected=expected
            ):
                seg, prompt = res.seg2, res.prompt2
            ctx.note = None
            self._new_key(ctx, res.enc, seg, smooth_with=None, prompt=prompt, index=job.index)
            event = job.event if self._state == TRACKING else None
            return _Outcome(self._key.prob, event=event, reason=job.reason,
                            decoder_runs=res.n_dec, motion=mo.IDENTITY)  # fmt: skip
        seg, prediction = res.seg, job.prediction
        tracking = self._state == TRACKING
        if prediction is not None:
            # a box prompt always gets *something* segmented: check it looks like the lesion
            # we follow (darker than the skin around it, about the predicted size)
            expected = float(prediction[1].sum())
            ok = self._plausible(seg.mask, ctx, identify=True, expected=expected)
        else:
            ok = self._plausible(seg.mask, ctx, identify=False)
        if ok and prediction is not None:
            agree = _dice(seg.mask, prediction[1])
            # after repeated disagreement while tracking, trust the model over the motion
            ok = agree >= cfg.accept_dice or (tracking and self._fails >= 2)
            if not ok:
                ctx.note = f"result rejected: Dice {agree:.2f} with the motion prediction"
        if ok:
            self._fails = 0
            ctx.note = None
            smooth = prediction[0] if (prediction is not None and tracking) else None
            self._new_key(ctx, res.enc, seg, smooth_with=smooth, prompt=res.prompt,
                          index=job.index)  # fmt: skip
            return _Outcome(self._key.prob, event=job.event, reason=job.reason,
                            decoder_runs=res.n_dec, motion=mo.IDENTITY)  # fmt: skip
        # rejected: keep following the prediction for a while, or stay lost
        self._fails += 1
        if prediction is not None and tracking and self._fails < 3:
            return _Outcome(prediction[0], reason=job.reason, decoder_runs=res.n_dec,
                            motion=None if ctx.est is None else ctx.est.affine)  # fmt: skip
        self._set_lost(event=tracking)
        return _Outcome(self._empty(), event="lost" if tracking else None, reason=job.reason,
                        decoder_runs=res.n_dec)  # fmt: skip

    def _new_key(
        self,
        ctx: _FrameContext,
        enc,
        seg,
        *,
        smooth_with: np.ndarray | None,
        prompt: np.ndarray,
        index: int,
    ) -> None:
        """Make this frame the key frame; smooth its probability with the warped previous one."""
        cfg = self.config
        prob = seg.probability.astype(np.float32)
        if (
            smooth_with is not None
            and cfg.smoothing < 1.0
            and ctx.est is not None
            and _dice(seg.mask, smooth_with > 0.5) >= cfg.smooth_min_dice
        ):
            blended = cfg.smoothing * prob + (1.0 - cfg.smoothing) * smooth_with
            prob = np.where(self._valid_from_key(ctx.est.affine), blended, prob)
        mask = mask_of(prob)
        old_to_new = None if ctx.est is None or self._key is None else ctx.est.affine
        self._key = _Key(
            index=index, thumb=ctx.thumb, encoding=enc, prob=prob, mask=mask,
            area=int(mask.sum()), cut=_touches_border(mask), iou=float(seg.iou_prediction),
            prompt=np.asarray(prompt, dtype=np.float64), quality=seg.outline_quality,
        )  # fmt: skip
        self._k2p = mo.IDENTITY.copy()
        ctx.key_replaced = True
        if mask.any() and (not self._key.cut or self._memory is None):
            self._remember(prob, mask, ctx.frame, prompt)
        elif self._memory is not None:
            if old_to_new is None:
                self._memory = None
            else:
                self._memory.to_key = mo.compose(old_to_new, self._memory.to_key)
        if mask.any():
            self._state = TRACKING
            self._lost_since = None
        else:
            self._set_lost(event=False)

    def _remember(
        self, prob: np.ndarray, mask: np.ndarray, frame: np.ndarray, prompt: np.ndarray
    ) -> None:
        """The current key's lesion becomes the memory (it is whole, or all we have)."""
        self._memory = _Memory(
            prob=prob, mask=mask, area=int(mask.sum()), box=box_of_mask(mask),
            appearance=appearance(frame, mask), to_key=mo.IDENTITY.copy(),
            prompt=np.asarray(prompt, dtype=np.float64),
        )  # fmt: skip

    # -- helpers ---------------------------------------------------------------------------------
    def _check_frame(self, frame: np.ndarray) -> np.ndarray:
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
            shape = getattr(frame, "shape", type(frame).__name__)
            raise SkinscreenError(
                f"a frame must be an (H, W, 3) RGB array, got {shape}; convert BGR video frames "
                "with cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)"
            )
        if frame.dtype != np.uint8:
            raise SkinscreenError(f"a frame must be uint8 RGB, got dtype {frame.dtype}")
        hw = frame.shape[:2]
        if min(hw) < 32:
            raise SkinscreenError(f"frame {hw[1]}x{hw[0]} is too small: need at least 32x32 px")
        if self._hw is None:
            self._hw = hw
        elif hw != self._hw:
            raise SkinscreenError(
                f"frame size changed from {self._hw[1]}x{self._hw[0]} to {hw[1]}x{hw[0]}: call "
                "tracker.reset() before feeding a different stream"
            )
        return np.ascontiguousarray(frame)

    def _encoding_frame(self, key: _Key) -> np.ndarray:
        return key.encoding.image

    def _min_area(self) -> float:
        h, w = self._hw
        return self.config.min_area_frac * h * w

    def _zoom_ok(self, a: np.ndarray) -> bool:
        z = mo.affine_scale(a)
        return 1.0 / self.config.max_zoom_change <= z <= self.config.max_zoom_change

    def _box_of(self, mask: np.ndarray) -> np.ndarray:
        return expand_box(box_of_mask(mask), self.config.box_margin, self._hw)

    def _mem_to_frame(self, a: np.ndarray) -> np.ndarray | None:
        """Affine memory frame -> this frame, given ``a`` (key -> this frame)."""
        return None if self._memory is None else mo.compose(a, self._memory.to_key)

    def _full_area(self, a: np.ndarray) -> float:
        """Expected area (px) of the whole lesion in this frame (``a``: key -> this frame)."""
        m2f = self._mem_to_frame(a)
        if m2f is None:
            return self._key.area * mo.affine_scale(a) ** 2
        return self._memory.area * mo.affine_scale(m2f) ** 2

    def _expected_area(self, ctx: _FrameContext) -> float | None:
        if self._memory is None:
            return None
        if ctx.est is None:
            return float(self._memory.area)
        return self._full_area(ctx.est.affine)

    def _carry_prompt(self, pred_mask: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Box prompt for an encoder run on this frame (``a``: key -> this frame).

        The prompt that produced the key's mask, carried by the camera motion (the box of the
        mapped inscribed ellipse); when the key saw only part of the lesion, or the lesion was
        lost, the prompt it had when last seen whole, carried from that frame instead. Then grown
        on a side the predicted mask reaches, and clipped to the frame.
        """
        h, w = self._hw
        key, mem = self._key, self._memory
        m2f = self._mem_to_frame(a)
        if m2f is not None and (key.cut or self._state != TRACKING):
            box = mo.map_box_ellipse(mem.prompt, m2f)
        else:
            box = mo.map_box_ellipse(key.prompt, a)
        mb = box_of_mask(pred_mask)
        gx = self.config.box_margin * (mb[2] - mb[0])
        gy = self.config.box_margin * (mb[3] - mb[1])
        tol = 2.0
        if mb[0] <= box[0] + tol:
            box[0] = min(box[0], mb[0] - gx)
        if mb[1] <= box[1] + tol:
            box[1] = min(box[1], mb[1] - gy)
        if mb[2] >= box[2] - tol:
            box[2] = max(box[2], mb[2] + gx)
        if mb[3] >= box[3] - tol:
            box[3] = max(box[3], mb[3] + gy)
        box = np.clip(box, 0, [w, h, w, h])
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            return expand_box(mb, self.config.box_margin, (h, w))
        return box

    def _warp_key(self, a: np.ndarray) -> np.ndarray:
        return mo.warp(self._key.prob, a, self._hw)

    def _valid_from_key(self, a: np.ndarray) -> np.ndarray:
        """Pixels of this frame that the key frame saw (``(H, W)`` bool)."""
        ones = np.ones(self._hw, dtype=np.uint8)
        return mo.warp(ones, a, self._hw, nearest=True) > 0

    def _sees_beyond_key(self, pred_mask: np.ndarray, a: np.ndarray) -> bool:
        """Whether this view around the lesion extends past the key frame's edges."""
        h, w = self._hw
        box = expand_box(box_of_mask(pred_mask), 0.15, (h, w))
        kb = mo.map_box(box, mo.invert(a))
        return bool(kb[0] < -2 or kb[1] < -2 or kb[2] > w + 2 or kb[3] > h + 2)

    def _plausible(
        self,
        mask: np.ndarray,
        ctx: _FrameContext,
        *,
        identify: bool,
        expected: float | None = None,
    ) -> bool:
        """Is ``mask`` a lesion? Size limits; with ``identify`` also the lesion we lost: darker
        than the skin around it (by at least 40% of the remembered contrast) and within 3x of
        the ``expected`` area. A rejection is noted in ``ctx.note``."""
        why = self._implausible(mask, ctx.frame, identify, expected)
        if why:
            ctx.note = f"result rejected: {why}"
        return why is None

    def _implausible(
        self, mask: np.ndarray, frame: np.ndarray, identify: bool, expected: float | None
    ) -> str | None:
        h, w = self._hw
        area = float(mask.sum())
        if area < self._min_area():
            return f"mask too small ({area:.0f} px)"
        if area > self.config.max_area_frac * h * w:
            return f"mask covers {area / (h * w):.0%} of the frame"
        if not identify:
            return None
        app = appearance(frame, mask)
        min_contrast = 2.0
        if self._memory is not None and self._memory.appearance.contrast_l > 0:
            min_contrast = max(min_contrast, 0.4 * self._memory.appearance.contrast_l)
        if app.contrast_l < min_contrast:
            return f"lightness contrast {app.contrast_l:.1f} < {min_contrast:.1f} L*"
        if expected and not 1 / 3 <= area / expected <= 3.0:
            return f"area {area:.0f} px, expected about {expected:.0f} px"
        return None

    def _set_lost(self, *, event: bool) -> None:
        if self._state == TRACKING and event:
            self.stats.lost_events += 1
        if self._state == TRACKING or self._lost_since is None:
            self._lost_since = self._index
            self._last_search = max(self._last_search, self._index)
        self._state = LOST

    def _empty(self) -> np.ndarray:
        return np.zeros(self._hw, dtype=np.float32)

    def _finish(self, ctx: _FrameContext, out: _Outcome, change: float, t0: float) -> FrameResult:
        t = time.perf_counter()
        mask = np.zeros(self._hw, dtype=bool)
        if self._state == TRACKING and out.event != "lost":
            mask = out.mask if out.mask is not None else mask_of(out.prob)
            if mask.sum() < self._min_area():
                mask[:] = False
        poly = outer_contour(mask)
        box = box_of_mask(mask)
        quality = frame_quality(ctx.frame, mask if mask.any() else None, box)
        ctx.timings["postprocess"] = (time.perf_counter() - t) * 1e3
        # the next frame's "previous frame" is this one
        if ctx.key_replaced:
            self._k2p = mo.IDENTITY.copy()
        elif ctx.est is not None:
            self._k2p = ctx.est.affine
        self._prev_thumb = ctx.thumb
        # background mode: a job that finished at the start of this frame reports here
        carry = self._carry
        event = out.event or carry.get("event")
        decoder_runs = out.decoder_runs + carry.get("decoder_runs", 0)
        note = ctx.note or carry.get("note")
        for k, v in carry.get("timings", {}).items():
            ctx.timings[f"background_{k}"] = v
        if event == "recovered":
            self.stats.recovered_events += 1
        total = (time.perf_counter() - t0) * 1e3
        ctx.timings["total"] = total
        state = TRACKING if mask.any() else LOST
        result = FrameResult(
            index=self._index,
            timestamp_s=ctx.timestamp_s,
            state=state,
            mask=mask,
            probability=out.prob,
            polygon=poly,
            svg_path=svg_path(poly),
            area_px=int(mask.sum()),
            box=box,
            encoder_ran=ctx.encoded,
            decoder_runs=decoder_runs,
            event=event,
            reason=out.reason if ctx.encoded else "skip",
            change=change,
            correlation=None if ctx.est is None or ctx.key_replaced else ctx.est.rho,
            motion=out.motion,
            iou_prediction=None if self._key is None else self._key.iou,
            outline_quality=None if self._key is None else self._key.quality,
            quality=quality,
            timings_ms=ctx.timings,
            note=note,
        )
        if state == TRACKING and self._picker is not None:
            self._picker.offer(self._index, ctx.frame, mask, quality, box)
        st = self.stats
        st.frames += 1
        st.processed += 1
        st.encoder_runs += int(ctx.encoded)
        st.decoder_runs += decoder_runs
        st.tracking_frames += int(state == TRACKING)
        st.processing_s += total / 1e3
        self._index += 1
        return result


__all__ = ["LesionTracker", "TrackerConfig", "FrameResult", "TrackerStats", "appearance"]
