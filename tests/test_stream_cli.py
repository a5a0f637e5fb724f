"""``skinscreen stream`` end to end on a synthetic video file, and the real-time frame loop."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest

from skinscreen.cli.main import main
from skinscreen.stream.bench import frame_dice, initial_box
from skinscreen.stream.runner import run_stream
from skinscreen.stream.source import VideoSource
from skinscreen.stream.synthetic import Segment, SyntheticClip, clip_from_files, write_video
from skinscreen.stream.tracker import LesionTracker, TrackerConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SHORT = (Segment("static", 4), Segment("pan", 6, pan_px=(-30, 12)))


@cache
def short_clip() -> SyntheticClip:
    stem = "ISIC_0012206"
    return clip_from_files(
        EXAMPLES / "images" / f"{stem}.jpg", EXAMPLES / "masks" / f"{stem}.png", SHORT
    )


@pytest.fixture()
def video(tmp_path) -> Path:
    return write_video(short_clip(), tmp_path / "clip.mp4")


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(args)
    out, err = capsys.readouterr()
    return e.value.code, out, err


def polygon_mask(polygon: list, hw: tuple[int, int]) -> np.ndarray:
    m = np.zeros(hw, np.uint8)
    if polygon:
        cv2.fillPoly(m, [np.round(np.array(polygon)).astype(np.int32)], 1)
    return m.astype(bool)


def test_stream_writes_video_jsonl_summary_and_best_frame(video, tmp_path, capsys):
    clip = short_clip()
    box = ",".join(f"{v:.0f}" for v in initial_box(clip))
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        ["stream", str(video), "--box", box, "--out", str(out), "--json"], capsys
    )
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["frames"] == summary["processed"] == len(clip)
    assert summary["dropped_frames"] == 0 and summary["realtime"] is False
    assert summary["encoder_runs"] >= 1 and summary["encoder_runs"] <= 3
    assert 0 < summary["encoder_skip_rate"] < 1 and summary["effective_fps"] > 0
    assert summary["lost_events"] == 0 and summary["best_frame"]["index"] in range(len(clip))
    assert "diagnosis" in summary["disclaimer"]
    assert sorted(p.name for p in out.iterdir()) == [
        "annotated.mp4", "best_frame.png", "frames.jsonl", "summary.json",
    ]  # fmt: skip
    assert json.loads((out / "summary.json").read_text())["encoder_runs"] == summary["encoder_runs"]

    records = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == list(range(len(clip)))
    assert records[0]["encoder_ran"] and records[0]["event"] == "init"
    hw = clip.masks[0].shape
    dice = [
        frame_dice(polygon_mask(r["polygon"], hw), t)
        for r, t in zip(records, clip.masks, strict=True)
    ]
    assert min(dice) >= 0.85, dice

    cap = cv2.VideoCapture(str(out / "annotated.mp4"))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (*hw, 3) and n == len(clip)
    best = cv2.imread(str(out / "best_frame.png"))
    assert best.shape == (*hw, 3)


def test_stream_scales_the_box_with_max_side(video, tmp_path, capsys):
    clip = short_clip()
    box = ",".join(f"{v:.0f}" for v in initial_box(clip))
    code, stdout, err = run_cli(
        ["stream", str(video), "--box", box, "--max-side", "192", "--max-frames", "3", "--json"],
        capsys,
    )
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["frames"] == 3 and summary["scale"] == pytest.approx(0.5)
    assert summary["tracking_frames"] == 3 and "outputs" not in summary


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["stream", "missing.mp4"], 1, "video file missing.mp4 not found"),
        (["stream", "97"], 1, "cannot open camera 97"),
        (["stream", "VIDEO", "--box", "1,2,3,4", "--auto"], 2, "either --box or --auto"),
        (["stream", "VIDEO", "--box", "0,0,5000,40"], 1, "outside the 384x288"),
        (["stream", "VIDEO", "--box", "1,2,3"], 2, "four numbers"),
    ],
)
def test_stream_bad_input_is_a_clear_error(video, tmp_path, capsys, args, code, message):
    out = tmp_path / "out"
    args = [str(video) if a == "VIDEO" else a for a in args] + ["--out", str(out)]
    got, _, err = run_cli(args, capsys)
    assert got == code and message in err
    assert not out.exists() or not any(out.iterdir())


def test_unreadable_video_file(tmp_path, capsys):
    bad = tmp_path / "notavideo.mp4"
    bad.write_bytes(b"\x00" * 2000)
    code, _, err = run_cli(["stream", str(bad)], capsys)
    assert code == 1 and "cannot read" in err or "no frame" in err


def test_realtime_replay_drops_frames_rather_than_lag(predictor, video):
    """Replayed at 30 FPS, the frames that arrive while the encoder runs are dropped."""
    clip = short_clip()
    tracker = LesionTracker(predictor, box=initial_box(clip))
    seen = []
    with VideoSource(video) as src:
        run = run_stream(src, tracker, realtime=True, on_frame=lambda f, r, fps: seen.append(r))
    assert run.frames == len(clip) == run.processed + run.dropped
    assert run.dropped >= 1 and seen[0].encoder_ran and not seen[0].dropped
    # the first encoder run takes far longer than one frame interval: the next frame is dropped
    assert seen[1].dropped and seen[1].mask is None
    assert tracker.stats.dropped == run.dropped
    # never behind: each processed frame started within one interval of its time stamp
    assert all(r.timestamp_s is not None for r in seen)


def test_realtime_with_background_encoder_keeps_processing_frames(predictor, video):
    """Live mode: while the encoder works on its thread, frames keep being processed."""
    clip = short_clip()
    config = TrackerConfig(background_encoder=True)
    seen = []
    tracker = LesionTracker(predictor, box=initial_box(clip), config=config)
    with tracker, VideoSource(video) as src:
        run = run_stream(src, tracker, realtime=True, on_frame=lambda f, r, fps: seen.append(r))
    assert run.frames == len(clip) == run.processed + run.dropped
    processed = [r for r in seen if not r.dropped]
    assert processed[0].encoder_ran and len(processed) >= 2
    assert all(r.timings_ms["encoder"] == 0 for r in processed)


def test_offline_run_processes_every_frame(predictor, video):
    clip = short_clip()
    tracker = LesionTracker(predictor, box=initial_box(clip))
    with VideoSource(video) as src:
        run = run_stream(src, tracker, realtime=False)
    assert run.dropped == 0 and run.processed == len(clip)
    assert tracker.stats.encoder_runs < len(clip)


def test_stream_is_listed_in_help(capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0 and "stream" in out
