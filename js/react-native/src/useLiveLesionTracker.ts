// Live camera: the core's LiveTracker (the strategy of `skinscreen stream`: block-matched pan,
// the encoder only when the view changed, the box carried with the motion) fed from the camera at
// the rate the device sustains: a frame that arrives while the model is busy is dropped, never
// queued, so the outline does not lag behind the picture.
//
// Wiring (react-native-vision-camera v5's frame output; not run here: it needs a device): ask for
// pixelFormat "rgb", copy the frame's pixels to the JS thread and call onFrame with
// packedFrame(bytes, width, height, bytesPerRow, "rgba" | "bgra") from @skinscreen/core.

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { type Box, type Encoding, type LesionSegmenter, LiveTracker, type RGBImage, type TrackResult, type TrackerOptions } from "@skinscreen/core";

/** The tracker's view of a segmenter: no re-prompt prelude (one box per key frame) and no box
 * check (machine-made boxes), as the Python tracker. */
export function trackerModel(seg: LesionSegmenter) {
  return {
    encode: (f: RGBImage): Promise<Encoding> => seg.encode(f, { prelude: false }),
    predict: (enc: Encoding, box: Box) => seg.predict(enc, box, { boxCheck: false }),
  };
}

export interface LiveLesionTracker {
  /** Hand over the newest frame; false when it was dropped (the model is still busy). */
  onFrame(frame: RGBImage): boolean;
  /** The latest result: polygon / svg_path in frame pixels, state, encoder_ran... */
  result: TrackResult | null;
  /** The user drew a new box on the frame shown. */
  setBox(box: Box): void;
  stats: { processed: number; dropped: number; encoderRuns: number };
}

export function useLiveLesionTracker(segmenter: LesionSegmenter | null, opts: TrackerOptions = {}): LiveLesionTracker {
  const tracker = useMemo(() => (segmenter ? new LiveTracker(trackerModel(segmenter), opts) : null), [segmenter]); // eslint-disable-line react-hooks/exhaustive-deps
  const busy = useRef(false);
  const counts = useRef({ processed: 0, dropped: 0, encoderRuns: 0 });
  const [result, setResult] = useState<TrackResult | null>(null);
  useEffect(() => {
    counts.current = { processed: 0, dropped: 0, encoderRuns: 0 };
    setResult(null);
  }, [tracker]);

  const onFrame = useCallback(
    (frame: RGBImage) => {
      if (!tracker || busy.current) {
        counts.current.dropped += 1;
        return false;
      }
      busy.current = true;
      tracker
        .step(frame)
        .then((r) => {
          counts.current.processed += 1;
          counts.current.encoderRuns = tracker.encoderRuns;
          setResult(r);
        })
        .finally(() => {
          busy.current = false;
        });
      return true;
    },
    [tracker],
  );

  const setBox = useCallback((box: Box) => tracker?.setBox(box), [tracker]);
  return { onFrame, result, setBox, stats: counts.current };
}
