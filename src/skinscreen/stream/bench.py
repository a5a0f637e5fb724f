"""Benchmark the tracker on synthetic hand-held clips with exact ground truth.

``python -m skinscreen.stream.bench`` builds one clip per sample photo (examples/images +
examples/masks by default), runs the tracker (encoder skipping + smoothing) and the per-frame
full-processing reference (encoder on every frame, same boxes and checks), and prints a JSON
report: effective FPS, encoder-skip rate, Dice against the warped expert mask for both, and the
difference. Speed is wall-clock on this machine (``effective_fps``), and frames per second of
this process's CPU time (``cpu_fps``): with ``--threads 1`` the latter is what one idle core
would sustain, a figure that does not depend on what else the machine is running.

Not a test: figures go in docs/stream.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from skinscreen.stream.synthetic import SyntheticClip, clip_from_files
from skinscreen.stream.tracker import LesionTracker, TrackerConfig


def frame_dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two ``(H, W)`` masks; two empty masks score 1 (correctly nothing in view)."""
    p, t = pred.astype(bool), truth.astype(bool)
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * int((p & t).sum()) / total


@dataclass
class ClipRun:
    """One tracker pass over one clip."""

    name: str
    mode: str
    dice: list[float] = field(default_factory=list)
    in_view: list[bool] = field(default_factory=list)
    visible: list[float] = field(default_factory=list)
    encoder: list[bool] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    stats: dict = field(default_factory=dict)
    best_frame: int | None = None
    flicker: float = float("nan")
    masks: list[np.ndarray] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return len(self.dice) / self.wall_s if self.wall_s > 0 else 0.0

    def mean_dice(self, *, visible_only: bool = True) -> float:
        d = [x for x, v in zip(self.dice, self.in_view, strict=True) if v or not visible_only]
        return float(np.mean(d)) if d else float("nan")

    def summary(self) -> dict:
        return {
            "clip": self.name,
            "mode": self.mode,
            "frames": len(self.dice),
            "wall_s": round(self.wall_s, 2),
            "cpu_s": round(self.cpu_s, 2),
            "effective_fps": round(self.fps, 2),
            "cpu_fps": round(len(self.dice) / self.cpu_s, 2) if self.cpu_s > 0 else None,
            "encoder_runs": int(sum(self.encoder)),
            "encoder_skip_rate": round(1 - sum(self.encoder) / max(1, len(self.encoder)), 3),
            "dice_in_view_mean": round(self.mean_dice(), 4),
            "dice_all_mean": round(self.mean_dice(visible_only=False), 4),
            "dice_mostly_in_view_mean": round(
                float(
                    np.mean([d for d, v in zip(self.dice, self.visible, strict=True) if v >= 0.5])
                ),
                4,
            ),
            "dice_in_view_min": round(
                min((d for d, v in zip(self.dice, self.in_view, strict=True) if v), default=1.0),
                4,
            ),
            "flicker": round(self.flicker, 4),
            "lost_events": self.stats.get("lost_events"),
            "recovered_events": self.stats.get("recovered_events"),
            "best_frame": self.best_frame,
        }


def flicker(masks: list[np.ndarray], clip: SyntheticClip) -> float:
    """Mean frame-to-frame change of the outline that camera motion does not explain.

    For consecutive frames with the lesion at least half in view: 1 - Dice(previous mask warped
    with the true camera motion, current mask). 0 = the outline moves exactly with the picture.
    """
    from skinscreen.stream import motion as mo

    hw = clip.masks[0].shape
    values = []
    for i in range(1, len(masks)):
        if min(clip.visible_fraction(i - 1), clip.visible_fraction(i)) < 0.5:
            continue
        rel = mo.compose(clip.affines[i], mo.invert(clip.affines[i - 1]))
        prev = mo.warp(masks[i - 1].astype(np.float32), rel, hw) >= 0.5
        values.append(1.0 - frame_dice(prev, masks[i]))
    return float(np.mean(values)) if values else float("nan")


def initial_box(clip: SyntheticClip, margin: float = 0.05) -> np.ndarray:
    """The expert box of the clip's first frame grown by ``margin`` (what a user would draw)."""
    from skinscreen.preprocess.transforms import box_from_mask, expand_box

    return expand_box(box_from_mask(clip.masks[0]), margin, clip.masks[0].shape)


def run_clip(
    predictor,
    clip: SyntheticClip,
    config: TrackerConfig | None = None,
    *,
    mode: str = "tracked",
    box: object | None = "truth",
    keep_masks: bool = False,
) -> ClipRun:
    """Feed every frame of ``clip`` to a fresh tracker and score each mask against the truth.

    ``box="truth"`` starts from the expert box of frame 0 (grown 5%), ``None`` uses the
    automatic mode.
    """
    b = initial_box(clip) if isinstance(box, str) and box == "truth" else box
    tracker = LesionTracker(predictor, box=b, config=config)
    run = ClipRun(clip.name, mode)
    masks = []
    t0, c0 = time.perf_counter(), time.process_time()
    for i, frame in enumerate(clip.frames):
        r = tracker.feed(frame, timestamp_s=i / clip.fps)
        masks.append(r.mask)
        run.encoder.append(r.encoder_ran)
        run.states.append(r.state)
    run.wall_s = time.perf_counter() - t0
    run.cpu_s = time.process_time() - c0
    for i, m in enumerate(masks):
        run.dice.append(frame_dice(m, clip.masks[i]))
        run.in_view.append(bool(clip.masks[i].any()))
        run.visible.append(clip.visible_fraction(i))
    run.flicker = flicker(masks, clip)
    if keep_masks:
        run.masks = masks
    run.stats = tracker.stats.to_json_dict()
    run.best_frame = None if tracker.best is None else tracker.best.index
    return run


def make_strip(
    predictor,
    clip: SyntheticClip,
    path: Path,
    *,
    labels: tuple[str, ...] = (
        "static",
        "pan",
        "zoom",
        "rotate",
        "brightness",
        "blur",
        "exit",
        "return",
        "static",
    ),
    tile_width: int = 256,
    columns: int = 3,
) -> list[int]:
    """Track ``clip`` and save a PNG frame strip of the overlay: one tile per script segment.

    Each tile is the frame as ``skinscreen stream`` annotates it, plus the expert outline
    (thin magenta) and the segment name and Dice. Returns the frame indices shown.
    """  # fmt: skip
    import cv2
    from PIL import Image

    from skinscreen.stream.annotate import annotate, frame_strip

    wanted: list[int] = []
    for i, lab in enumerate(labels):
        span = [j for j, x in enumerate(clip.labels) if x == lab]
        if lab == "static" and i > 0:
            span = span[len(span) // 2 :]  # the last static stretch
        if lab == "exit":
            span = [j for j in span if not clip.in_view[j]] or span
        if span:
            wanted.append(span[len(span) // 2] if lab != "return" else span[-2])
    tracker = LesionTracker(predictor, box=initial_box(clip))
    tiles = []
    for i, frame in enumerate(clip.frames):
        r = tracker.feed(frame)
        if i not in wanted:
            continue
        img = annotate(frame, r, footer=False)
        truth = clip.masks[i].astype(np.uint8)
        contours, _ = cv2.findContours(truth, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(img, contours, -1, (255, 0, 255), 1, cv2.LINE_AA)
        h, w = img.shape[:2]
        img = cv2.resize(img, (tile_width, round(h * tile_width / w)), interpolation=cv2.INTER_AREA)
        text = f"{clip.labels[i]}  Dice {frame_dice(r.mask, clip.masks[i]):.2f}"
        if not clip.in_view[i]:
            text = f"{clip.labels[i]}  out of view"
        band = img[-22:]
        band[:] = (band * 0.45).astype(np.uint8)
        y = img.shape[0] - 7
        cv2.putText(
            img, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA
        )
        tiles.append(img)
    path.parent.mkdir(parents=True, exist_ok=True)
    strip = Image.fromarray(frame_strip(tiles, columns))
    # a 160-colour palette halves the file and is indistinguishable at this size
    strip.quantize(colors=160, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return wanted


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m skinscreen.stream.bench", description=__doc__)
    root = Path(__file__).resolve().parents[3]
    ap.add_argument("--images", type=Path, default=root / "examples" / "images")
    ap.add_argument("--masks", type=Path, default=root / "examples" / "masks")
    ap.add_argument("--script", default="handheld", help="clip script (see synthetic.SCRIPTS)")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N photos")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads (default 2)")
    ap.add_argument("--no-full", action="store_true", help="skip the full-processing reference")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON report here")
    ap.add_argument("--strip", type=Path, default=None, help="write a PNG frame strip and exit")
    args = ap.parse_args(argv)

    from skinscreen.predictor import LesionPredictor

    predictor = LesionPredictor(threads=args.threads)
    photos = sorted(args.images.glob("*.jpg"))[: args.limit]
    if args.strip is not None:
        photo = photos[0]
        clip = clip_from_files(photo, args.masks / f"{photo.stem}.png", args.script)
        shown = make_strip(predictor, clip, args.strip)
        print(json.dumps({"strip": str(args.strip), "clip": clip.name, "frames": shown}))
        return 0
    rows = []
    for photo in photos:
        clip = clip_from_files(photo, args.masks / f"{photo.stem}.png", args.script)
        tracked = run_clip(predictor, clip, mode="tracked")
        row = {"tracked": tracked.summary()}
        if not args.no_full:
            full = run_clip(predictor, clip, TrackerConfig.full_processing(), mode="full")
            row["full"] = full.summary()
            row["dice_gap"] = round(full.mean_dice() - tracked.mean_dice(), 4)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    t = [r["tracked"] for r in rows]
    report = {
        "script": args.script,
        "clips": rows,
        "tracked": {
            "frames": sum(x["frames"] for x in t),
            "effective_fps": round(sum(x["frames"] for x in t) / sum(x["wall_s"] for x in t), 2),
            "cpu_fps": round(sum(x["frames"] for x in t) / sum(x["cpu_s"] for x in t), 2),
            "encoder_skip_rate": round(
                1 - sum(x["encoder_runs"] for x in t) / sum(x["frames"] for x in t), 3
            ),
            "dice_in_view_mean": round(float(np.mean([x["dice_in_view_mean"] for x in t])), 4),
        },
    }
    if not args.no_full:
        f = [r["full"] for r in rows]
        report["full"] = {
            "effective_fps": round(sum(x["frames"] for x in f) / sum(x["wall_s"] for x in f), 2),
            "dice_in_view_mean": round(float(np.mean([x["dice_in_view_mean"] for x in f])), 4),
        }
        report["dice_gap_mean"] = round(
            report["full"]["dice_in_view_mean"] - report["tracked"]["dice_in_view_mean"], 4
        )
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
