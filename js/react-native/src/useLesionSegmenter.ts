// useLesionSegmenter(bundle): open the bundle once, encode a photo once, re-prompt it cheaply
// with each box the user draws (the re-prompt pair: only the prompt decoder runs per box).

import { useCallback, useEffect, useRef, useState } from "react";
import { type Backend, type BundleSource, type Encoding, LesionSegmenter, type OpenOptions, type RGBImage, type Segmentation } from "@skinscreen/core";

export interface LesionSegmenterState {
  /** The segmenter once the bundle is open (null while loading or after an error). */
  segmenter: LesionSegmenter | null;
  error: Error | null;
  /** Encode a photo (EXIF-upright RGB/RGBA pixels); later predict() calls prompt it. */
  setImage(img: RGBImage): Promise<Encoding>;
  /** Segment the current photo inside an XYXY box (photo pixels). */
  predict(box: readonly [number, number, number, number]): Promise<Segmentation>;
  /** The latest segmentation. */
  segmentation: Segmentation | null;
  busy: boolean;
}

export function useLesionSegmenter(bundle: BundleSource, backend: Backend, opts: OpenOptions = { reprompt: true }): LesionSegmenterState {
  const [segmenter, setSegmenter] = useState<LesionSegmenter | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [segmentation, setSegmentation] = useState<Segmentation | null>(null);
  const [busy, setBusy] = useState(false);
  const encoding = useRef<Encoding | null>(null);

  useEffect(() => {
    let live = true;
    let opened: LesionSegmenter | null = null;
    setSegmenter(null);
    setError(null);
    LesionSegmenter.open(bundle, backend, opts).then(
      (s) => {
        opened = s;
        if (live) setSegmenter(s);
        else void s.release();
      },
      (e: Error) => live && setError(e),
    );
    return () => {
      live = false;
      encoding.current = null;
      if (opened) void opened.release();
    };
    // the bundle and backend identify the model; opts are read once per bundle
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [bundle, backend]);

  const setImage = useCallback(
    async (img: RGBImage) => {
      if (!segmenter) throw new Error("the model is still loading");
      setBusy(true);
      try {
        encoding.current = await segmenter.encode(img);
        setSegmentation(null);
        return encoding.current;
      } finally {
        setBusy(false);
      }
    },
    [segmenter],
  );

  const predict = useCallback(
    async (box: readonly [number, number, number, number]) => {
      if (!segmenter || !encoding.current) throw new Error("no photo: call setImage(photo) first");
      const s = await segmenter.predict(encoding.current, box);
      setSegmentation(s);
      return s;
    },
    [segmenter],
  );

  return { segmenter, error, setImage, predict, segmentation, busy };
}
