"""Synthetic hand-held clips with known camera motion, built from one photo and its expert mask.

A virtual camera looks at a *canvas*: the photo in the middle, surrounded by lesion-free skin
(the photo with its lesion inpainted, mirrored outwards), so the camera can pan until the lesion
leaves the view. Every frame is ``warpAffine(canvas, A)`` for a known 2x3 affine ``A``
(canvas pixels -> frame pixels), and its ground-truth mask is the expert mask warped with the same
``A``: the truth of every frame is known exactly.

Camera poses follow a *script* of segments (static, pan, zoom, rotation, brightness change, blur,
exit and return of the lesion); a small seeded jitter and sensor noise make it hand-held.

Conventions: frames ``(H, W, 3)`` uint8 RGB, masks ``(H, W)`` bool, affines ``(2, 3)`` float64
mapping ``[x, y, 1]`` canvas pixels to frame pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from skinscreen.errors import SkinscreenError

#: Default frame size (H, W): small, so that tests stay cheap on a 2-core CPU.
FRAME_HW = (288, 384)
#: Longest side (px) the photo is scaled to before it becomes the canvas centre.
CANVAS_SIDE = 512


@dataclass(frozen=True)
class CameraPose:
    """Where the virtual camera looks.

    Attributes:
        cx, cy: canvas point (canvas pixels) seen at the frame centre.
        zoom: frame pixels per canvas pixel.
        angle_deg: camera roll; the scene appears rotated by ``-angle_deg`` (counter-clockwise
            positive, OpenCV convention for ``getRotationMatrix2D``).
        gain: brightness multiplier applied to the frame.
        blur_sigma: Gaussian blur (frame pixels, 0 = sharp), e.g. motion or focus blur.
    """

    cx: float
    cy: float
    zoom: float
    angle_deg: float = 0.0
    gain: float = 1.0
    blur_sigma: float = 0.0


@dataclass(frozen=True)
class Segment:
    """One stretch of a script: ``n`` frames moving linearly from the current pose.

    Attributes:
        name: label stored per frame (e.g. ``"pan"``).
        n: number of frames.
        pan_px: (dx, dy) the *scene* moves in frame pixels over the segment (camera moves the
            other way).
        zoom: zoom factor reached at the end (multiplies the current zoom).
        angle_deg: rotation added over the segment.
        gain: brightness gain at the end (absolute, 1 = unchanged).
        blur_sigma: blur held during the whole segment (absolute).
        exit: ``"out"`` pans (towards +x in the frame) until the lesion has fully left the view,
            ``"back"`` pans back until the camera looks at the lesion centre again; overrides
            ``pan_px``.
        hold: frames at the end pose after the motion (counted in ``n``).
    """

    name: str
    n: int
    pan_px: tuple[float, float] = (0.0, 0.0)
    zoom: float = 1.0
    angle_deg: float = 0.0
    gain: float | None = None
    blur_sigma: float = 0.0
    exit: str | None = None
    hold: int = 0


#: Named scripts. ``handheld`` is the benchmark clip; the short ones keep tests cheap.
SCRIPTS: dict[str, tuple[Segment, ...]] = {
    "handheld": (
        Segment("static", 10),
        Segment("pan", 8, pan_px=(-48, 20)),
        Segment("zoom", 8, zoom=1.3),
        Segment("rotate", 8, angle_deg=14),
        Segment("brightness", 6, gain=0.7, hold=2),
        Segment("blur", 3, gain=0.7, blur_sigma=2.0),
        Segment("exit", 8, gain=0.7, exit="out", hold=3),
        Segment("return", 7, gain=0.7, exit="back", hold=1),
        Segment("static", 6, gain=0.7),
    ),
    "static": (Segment("static", 16),),
    "pan-zoom-rotate": (
        Segment("static", 4),
        Segment("pan", 8, pan_px=(-40, 16)),
        Segment("zoom", 6, zoom=1.25),
        Segment("rotate", 6, angle_deg=12),
        Segment("brightness", 4, gain=0.75),
        Segment("blur", 2, gain=0.75, blur_sigma=1.5),
    ),
    "exit-return": (
        Segment("static", 3),
        Segment("exit", 8, exit="out", hold=3),
        Segment("return", 7, exit="back", hold=1),
        Segment("static", 4),
    ),
}


@dataclass
class SyntheticClip:
    """A rendered clip and its exact ground truth.

    Attributes:
        frames: ``(H, W, 3)`` uint8 RGB frames.
        masks: ``(H, W)`` bool ground-truth lesion masks (empty when the lesion is out of view).
        affines: ``(2, 3)`` canvas -> frame affines.
        poses: camera pose of each frame.
        labels: script segment name of each frame.
        fps: nominal frame rate.
        name: clip name (photo stem + script).
    """

    frames: list[np.ndarray]
    masks: list[np.ndarray]
    affines: list[np.ndarray]
    poses: list[CameraPose]
    labels: list[str]
    fps: float = 30.0
    name: str = "clip"
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def in_view(self) -> list[bool]:
        """Whether any lesion pixel is visible in each frame."""
        return [bool(m.any()) for m in self.masks]

    def visible_fraction(self, i: int) -> float:
        """Visible lesion area in frame ``i`` over its area if the whole frame could see it."""
        full = self.meta["lesion_area_canvas"] * self.poses[i].zoom ** 2
        return float(self.masks[i].sum()) / max(full, 1.0)


def skin_fill(image: np.ndarray, mask: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """The photo ``(H, W, 3)`` with the lesion ``(H, W)`` replaced by plausible skin.

    The lesion (dilated) is inpainted (Telea) on a quarter-size copy, upsampled, and given the
    skin's fine texture back as seeded Gaussian noise matching the skin's high-pass energy.
    """
    h, w = mask.shape
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8), iterations=2)
    small = cv2.resize(image, (max(8, w // 4), max(8, h // 4)), interpolation=cv2.INTER_AREA)
    small_m = cv2.resize(grown, small.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    small_m = cv2.dilate(small_m, np.ones((3, 3), np.uint8))
    filled = cv2.inpaint(small, small_m, 5, cv2.INPAINT_TELEA)
    filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    skin = grown == 0
    hp = image.astype(np.float32) - cv2.GaussianBlur(image, (0, 0), 3).astype(np.float32)
    sigma = float(hp[skin].std()) if skin.any() else 4.0
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.0)
    noise *= sigma / max(float(noise.std()), 1e-6)
    filled += noise[..., None]
    out = image.astype(np.float32)
    soft = cv2.GaussianBlur(grown.astype(np.float32), (0, 0), 4)[..., None]
    out = out * (1 - soft) + filled * soft
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def make_canvas(
    image: np.ndarray, mask: np.ndarray, *, side: int = CANVAS_SIDE, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Photo ``(H, W, 3)`` + mask ``(H, W)`` -> (canvas ``(3h, 3w, 3)``, canvas mask ``(3h, 3w)``).

    The photo is scaled so its longest side is ``side``; the canvas is that photo surrounded on
    every side by a mirrored lesion-free copy, so the lesion appears exactly once, in the middle.
    """
    if image.shape[:2] != mask.shape:
        raise SkinscreenError(
            f"photo {image.shape[1]}x{image.shape[0]} and mask {mask.shape[1]}x{mask.shape[0]} "
            "differ in size: give the expert mask of this photo"
        )
    if not mask.any():
        raise SkinscreenError("the mask is empty: a synthetic clip needs a lesion to track")
    scale = side / max(image.shape[:2])
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    img = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    msk = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    skin = skin_fill(img, msk, seed=seed)
    h, w = msk.shape
    canvas = cv2.copyMakeBorder(skin, h, h, w, w, cv2.BORDER_REFLECT_101)
    canvas[h : 2 * h, w : 2 * w] = img
    canvas_mask = np.zeros(canvas.shape[:2], dtype=bool)
    canvas_mask[h : 2 * h, w : 2 * w] = msk
    return canvas, canvas_mask


def pose_affine(pose: CameraPose, frame_hw: tuple[int, int]) -> np.ndarray:
    """2x3 affine mapping canvas pixels to frame pixels for ``pose`` (frame size (H, W))."""
    h, w = frame_hw
    a = math.radians(pose.angle_deg)
    c, s = math.cos(a) * pose.zoom, math.sin(a) * pose.zoom
    # Same rotation sense as cv2.getRotationMatrix2D(angle): [[c, s], [-s, c]]
    rot = np.array([[c, s], [-s, c]])
    t = np.array([w / 2.0, h / 2.0]) - rot @ np.array([pose.cx, pose.cy])
    return np.hstack([rot, t[:, None]])


def render(
    canvas: np.ndarray,
    canvas_mask: np.ndarray,
    pose: CameraPose,
    frame_hw: tuple[int, int] = FRAME_HW,
    *,
    noise_sigma: float = 1.5,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one frame: (frame ``(H, W, 3)`` uint8, truth ``(H, W)`` bool, affine ``(2, 3)``)."""
    h, w = frame_hw
    a = pose_affine(pose, frame_hw)
    frame = cv2.warpAffine(
        canvas, a, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    truth = (
        cv2.warpAffine(
            canvas_mask.astype(np.float32),
            a,
            (w, h),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        >= 0.5
    )
    f = frame.astype(np.float32)
    if pose.blur_sigma > 0:
        f = cv2.GaussianBlur(f, (0, 0), pose.blur_sigma)
    f *= pose.gain
    if noise_sigma > 0:
        rng = rng or np.random.default_rng(0)
        f += rng.normal(0, noise_sigma, f.shape).astype(np.float32)
    return np.clip(f + 0.5, 0, 255).astype(np.uint8), truth, a


def _ease(u: float) -> float:
    """Smooth start/stop (cosine ease-in-out) for u in [0, 1]."""
    return 0.5 - 0.5 * math.cos(math.pi * u)


def script_poses(
    script: tuple[Segment, ...],
    start: CameraPose,
    lesion_box: np.ndarray,
    frame_hw: tuple[int, int],
) -> list[tuple[str, CameraPose]]:
    """Expand a script into one (label, pose) per frame, starting at ``start``.

    ``lesion_box`` (XYXY, canvas pixels) sizes the ``exit="out"`` pan: far enough that no lesion
    pixel stays in view whatever the zoom and roll.
    """
    h, w = frame_hw
    lx0, ly0, lx1, ly1 = lesion_box
    lcx, lcy = (lx0 + lx1) / 2, (ly0 + ly1) / 2
    lesion_r = 0.5 * math.hypot(lx1 - lx0, ly1 - ly0)
    out: list[tuple[str, CameraPose]] = []
    pose = start
    for seg in script:
        moving = max(1, seg.n - seg.hold)
        a0 = math.radians(pose.angle_deg)
        if seg.exit == "out":
            frame_r = 0.5 * math.hypot(w, h) / pose.zoom
            # camera moves along +x of the frame: the scene leaves to the left
            along = (pose.cx - lcx) * math.cos(a0) + (pose.cy - lcy) * math.sin(a0)
            dist = (lesion_r + frame_r) * 1.05 - along
            dcx, dcy = dist * math.cos(a0), dist * math.sin(a0)
        elif seg.exit == "back":
            dcx, dcy = lcx - pose.cx, lcy - pose.cy
        else:
            # the scene moves by pan_px in the frame: the camera moves the opposite way
            dx, dy = -seg.pan_px[0] / pose.zoom, -seg.pan_px[1] / pose.zoom
            dcx = dx * math.cos(a0) - dy * math.sin(a0)
            dcy = dx * math.sin(a0) + dy * math.cos(a0)
        end = replace(
            pose,
            cx=pose.cx + dcx,
            cy=pose.cy + dcy,
            zoom=pose.zoom * seg.zoom,
            angle_deg=pose.angle_deg + seg.angle_deg,
            gain=pose.gain if seg.gain is None else seg.gain,
        )
        for i in range(seg.n):
            u = _ease(min(1.0, (i + 1) / moving))
            p = CameraPose(
                cx=pose.cx + (end.cx - pose.cx) * u,
                cy=pose.cy + (end.cy - pose.cy) * u,
                zoom=pose.zoom * (end.zoom / pose.zoom) ** u,
                angle_deg=pose.angle_deg + (end.angle_deg - pose.angle_deg) * u,
                gain=pose.gain + (end.gain - pose.gain) * u,
                blur_sigma=seg.blur_sigma,
            )
            out.append((seg.name, p))
        pose = replace(end, blur_sigma=0.0)
    return out


def make_clip(
    image: np.ndarray,
    mask: np.ndarray,
    script: str | tuple[Segment, ...] = "handheld",
    *,
    frame_hw: tuple[int, int] = FRAME_HW,
    fps: float = 30.0,
    lesion_fill: float = 0.5,
    jitter_px: float = 0.7,
    noise_sigma: float = 1.5,
    seed: int = 0,
    name: str = "clip",
) -> SyntheticClip:
    """Render a hand-held clip of the lesion in ``image`` ``(H, W, 3)`` with truth ``mask`` ``(H, W)``.

    Args:
        script: a name in :data:`SCRIPTS` or a tuple of :class:`Segment`.
        frame_hw: frame size (H, W).
        lesion_fill: the lesion's larger box side as a fraction of the frame's smaller side at
            the start (sets the initial zoom).
        jitter_px: standard deviation (frame pixels) of the hand tremor added to every pose.
        noise_sigma: sensor noise (grey levels), so no two frames are identical.
        seed: seeds the skin texture, jitter and noise (same seed, same clip).
    """
    if isinstance(script, str):
        if script not in SCRIPTS:
            raise SkinscreenError(
                f"unknown clip script '{script}': choose one of {', '.join(sorted(SCRIPTS))}"
            )
        segments = SCRIPTS[script]
    else:
        segments = tuple(script)
    canvas, canvas_mask = make_canvas(image, mask, seed=seed)
    ys, xs = np.nonzero(canvas_mask)
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)
    zoom = lesion_fill * min(frame_hw) / max(box[2] - box[0], box[3] - box[1])
    start = CameraPose(cx=(box[0] + box[2]) / 2, cy=(box[1] + box[3]) / 2, zoom=zoom)
    rng = np.random.default_rng(seed)
    clip = SyntheticClip([], [], [], [], [], fps=fps, name=name)
    clip.meta["lesion_area_canvas"] = float(canvas_mask.sum())
    for label, pose in script_poses(segments, start, box, frame_hw):
        jx, jy = rng.normal(0, jitter_px, 2) / pose.zoom
        pose = replace(pose, cx=pose.cx + jx, cy=pose.cy + jy)
        frame, truth, a = render(
            canvas, canvas_mask, pose, frame_hw, noise_sigma=noise_sigma, rng=rng
        )
        clip.frames.append(frame)
        clip.masks.append(truth)
        clip.affines.append(a)
        clip.poses.append(pose)
        clip.labels.append(label)
    return clip


def clip_from_files(
    image_path: str | Path, mask_path: str | Path, script: str = "handheld", **kwargs
) -> SyntheticClip:
    """:func:`make_clip` from a photo file and its 0/255 expert mask PNG."""
    from skinscreen.io.image import load_image, load_mask

    image, mask = load_image(image_path), load_mask(mask_path)
    kwargs.setdefault("name", f"{Path(image_path).stem}-{script}")
    return make_clip(image, mask, script, **kwargs)


def write_video(clip: SyntheticClip, path: str | Path, *, fourcc: str = "mp4v") -> Path:
    """Write the clip's frames to a video file (atomically: a temporary file, then rename)."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    h, w = clip.frames[0].shape[:2]
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*fourcc), clip.fps, (w, h))
    try:
        if not writer.isOpened():
            raise SkinscreenError(f"OpenCV cannot write {path.suffix} video with codec {fourcc}")
        for frame in clip.frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        os.replace(tmp, path)
    finally:
        writer.release()
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


__all__ = [
    "CameraPose",
    "Segment",
    "SCRIPTS",
    "SyntheticClip",
    "make_canvas",
    "make_clip",
    "clip_from_files",
    "pose_affine",
    "render",
    "write_video",
]
