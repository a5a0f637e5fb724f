"""``skinscreen stream``: segment and track a lesion through a video file or a camera feed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from skinscreen.cli.common import box_callback, make_predictor, model_options, selected_box_check


@click.command(
    "stream",
    epilog=(
        "Examples:\n\n"
        "  skinscreen stream clip.mp4 --box 210,120,380,260 --out results/\n\n"
        "  skinscreen stream 0 --auto --out live/ --max-frames 300   # camera 0\n\n"
        "  skinscreen stream clip.mp4 --json                        # summary only, nothing written\n\n"
        "Outputs in --out: annotated.mp4 (mask fill + contour + FPS), frames.jsonl (one record per "
        "frame: state, box, polygon, svg_path, area_px, encoder_ran, dropped, ...), summary.json "
        "(frames, effective FPS, encoder runs, dropped frames, lost/recovered events, best frame) "
        "and best_frame.png (sharpest, well-exposed, lesion-centred frame, for the still "
        "assessment). Coordinates are those of the processed frames (see --max-side)."
    ),
)
@click.argument("source")
@click.option(
    "--box",
    callback=box_callback,
    metavar="X0,Y0,X1,Y1",
    help="The lesion's box in the first frame (source video pixels, XYXY).",
)
@click.option(
    "--auto",
    "auto",
    is_flag=True,
    help="Find the lesion in the first frame automatically (the default when --box is "
    "absent). A lost lesion is always looked for again.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write annotated.mp4, frames.jsonl, summary.json and best_frame.png here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option(
    "--realtime/--no-realtime",
    default=None,
    help="Drop frames rather than lag behind the source's frame rate (default: on for a "
    "camera, off for a file: every frame of a file is processed).",
)
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after N frames.")
@click.option(
    "--max-side",
    type=click.IntRange(min=64),
    default=640,
    show_default=True,
    help="Downscale frames so their longest side is at most this many pixels before tracking.",
)
@model_options
def command(
    source,
    box,
    auto,
    out_dir,
    as_json,
    realtime,
    max_frames,
    max_side,
    model,
    variant,
    bundle_dir,
    threads,
):
    """Segment the lesion in every frame of SOURCE (a video file, or a camera index such as 0).

    The lesion is tracked: its box follows the camera motion and the mask; the image encoder
    runs only when the view has changed (camera motion is followed on thumbnails in between);
    the mask is smoothed over time; a lost lesion is found again when it comes back into view.
    The box check is off here unless --box-check is given (the tracker's boxes come from its
    previous mask, not from a hand). A screening aid, never a diagnosis.
    """
    from skinscreen.disclaimer import DISCLAIMER
    from skinscreen.stream.output import StreamOutputs
    from skinscreen.stream.runner import run_stream
    from skinscreen.stream.source import VideoSource, scale_factor
    from skinscreen.stream.tracker import LesionTracker, TrackerConfig

    if box is not None and auto:
        raise click.UsageError("give either --box or --auto, not both")
    src = VideoSource(source)
    outputs = tracker = None
    try:
        info = src.info
        scale = scale_factor(info.size_hw, max_side)
        tracker_box = None if box is None else [v * scale for v in box]
        if tracker_box is not None:
            from skinscreen.predictor import validate_box

            h, w = info.size_hw
            validate_box(box, (h, w))  # in source pixels: the message names the source's size
        rt = info.is_camera if realtime is None else bool(realtime)
        # the tracker prompts with boxes it derives from the previous mask, not drawn ones: no
        # box check unless asked (its decision could flip from frame to frame)
        predictor = make_predictor(model, variant, bundle_dir, threads, box_check_default=False)
        # live: the encoder works on a thread while frames keep flowing through the motion path
        config = TrackerConfig(background_encoder=rt, box_check=bool(selected_box_check()))
        tracker = LesionTracker(predictor, box=tracker_box, config=config)
        if out_dir is not None:
            outputs = StreamOutputs(out_dir, info.fps)
        bar = _progress(info.frame_count if max_frames is None else max_frames, src.name)

        def on_frame(frame, result, fps_now):
            if outputs is not None:
                outputs.write(frame, result, fps_now)
            if bar is not None:
                bar.update(1)

        run = run_stream(
            src, tracker, realtime=rt, max_side=max_side, max_frames=max_frames, on_frame=on_frame
        )
        if bar is not None:
            bar.close()
        st = tracker.stats
        best = tracker.best
        summary = {
            "source": info.to_json_dict(),
            "realtime": rt,
            "scale": round(scale, 6),
            "box": None if box is None else [round(float(v), 2) for v in box],
            "box_source": "user" if box is not None else "auto",
            "frames": run.frames,
            "processed": run.processed,
            "dropped_frames": run.dropped,
            "effective_fps": round(run.effective_fps, 2),
            "tracker_fps": round(st.processed / st.processing_s, 2) if st.processing_s else None,
            "wall_s": round(run.wall_s, 3),
            "encoder_runs": st.encoder_runs,
            "decoder_runs": st.decoder_runs,
            "encoder_skip_rate": round(st.encoder_skip_rate, 4),
            "lost_events": st.lost_events,
            "recovered_events": st.recovered_events,
            "tracking_frames": st.tracking_frames,
            "best_frame": None
            if best is None
            else {
                "index": best.index,
                "box": None if best.box is None else [round(float(v), 1) for v in best.box],
                "quality": best.quality.to_json_dict(),
            },
            "interrupted": run.interrupted,
            "model": predictor.spec.name,
            "variant": predictor.bundle.variant,
            "disclaimer": DISCLAIMER,
        }
        if outputs is not None:
            summary["outputs"] = outputs.commit(summary, None if best is None else best.frame)
            outputs = None
    except BaseException:
        if outputs is not None:
            outputs.abort()
        raise
    finally:
        if tracker is not None:
            tracker.close()
        src.close()

    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(
            f"{src.name}: {run.frames} frames, {run.processed} processed, {run.dropped} dropped, "
            f"{summary['effective_fps']:.1f} FPS, encoder on {st.encoder_runs} "
            f"({100 * (1 - st.encoder_skip_rate):.0f}% of processed frames), "
            f"lost {st.lost_events}x, recovered {st.recovered_events}x, best frame "
            f"{'none' if best is None else best.index}"
        )
        if "outputs" in summary:
            click.echo(f"wrote {', '.join(Path(p).name for p in summary['outputs'].values())} "
                       f"to {out_dir}/")  # fmt: skip
        click.echo(DISCLAIMER, err=True)
    if st.tracking_frames == 0:
        click.echo(
            "note: no lesion was tracked in any frame; give its box in the first frame with "
            "--box X0,Y0,X1,Y1",
            err=True,
        )


def _progress(total: int | None, name: str):
    """A tqdm bar on stderr when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(
        total=total, desc=f"stream {Path(name).name}", unit="frame", file=sys.stderr, leave=False
    )
