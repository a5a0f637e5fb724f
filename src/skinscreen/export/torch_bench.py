"""PyTorch reference pipeline for ``skinscreen bench``, run in its own process (needs torch).

The benchmark itself never imports torch: it starts ``python -m skinscreen.export.torch_bench``
and talks JSON lines over stdin/stdout, so both pipelines are timed in the same run, on the same
photos and boxes, interleaved. The pipeline is the runtime's (same loading, pre- and
post-processing) with the PyTorch model in the middle.

Protocol: the child prints ``{"ready": true, "startup_s": ...}``; then for each request line
``{"image": path, "box": [x0, y0, x1, y1], "reprompt_boxes": [[...], ...], "mask_out": path}``
it answers one line of stage timings in ms and writes the ``(H, W)`` bool mask to ``mask_out``
(``.npy``). ``--once IMAGE --box X0,Y0,X1,Y1``: cold-start mode, one mask then exit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

T_START = time.perf_counter()

import numpy as np  # noqa: E402


def _post(spec, logits: np.ndarray, t):
    """The runtime predictor's post-processing (mask, probability, polygon)."""
    from skinscreen.postprocess.mask import clean_mask, outer_contour, sigmoid
    from skinscreen.preprocess.transforms import crop_and_resize_logits

    full = crop_and_resize_logits(logits, t, spec.low_res_size)
    mask = clean_mask(full > spec.mask_threshold)
    return mask, sigmoid(full), outer_contour(mask)


class TorchPipeline:
    """File -> mask with the PyTorch model; ``threads`` intra-op threads."""

    def __init__(self, model: str = "litemedsam", threads: int = 2) -> None:
        import torch

        from skinscreen.export.reference import load_model
        from skinscreen.spec import get_spec

        torch.set_num_threads(threads)
        self.torch = torch
        self.spec = get_spec(model)
        self.net = load_model(self.spec)

    def run(self, image: str, box, reprompt_boxes=()) -> tuple[dict, np.ndarray]:
        from skinscreen.io.image import load_image
        from skinscreen.preprocess.transforms import preprocess

        torch = self.torch
        t0 = time.perf_counter()
        rgb = load_image(image)
        t1 = time.perf_counter()
        x, t = preprocess(self.spec, rgb)
        t2 = time.perf_counter()
        with torch.no_grad():
            emb = self.net.image_encoder(torch.from_numpy(x))
            t3 = time.perf_counter()
            bm = torch.as_tensor(t.apply_boxes(box).astype(np.float32).reshape(1, 4))
            logits, _ = self.net.decode(emb, bm)
            t4 = time.perf_counter()
            mask, _, _ = _post(self.spec, logits[0, 0].numpy(), t)
            t5 = time.perf_counter()
            reprompt = []
            for b in reprompt_boxes:
                r0 = time.perf_counter()
                bm = torch.as_tensor(t.apply_boxes(b).astype(np.float32).reshape(1, 4))
                lg, _ = self.net.decode(emb, bm)
                _post(self.spec, lg[0, 0].numpy(), t)
                reprompt.append((time.perf_counter() - r0) * 1e3)
        ms = {
            "load": (t1 - t0) * 1e3,
            "preprocess": (t2 - t1) * 1e3,
            "encoder": (t3 - t2) * 1e3,
            "decoder": (t4 - t3) * 1e3,
            "postprocess": (t5 - t4) * 1e3,
            "file_to_mask": (t5 - t0) * 1e3,
            "reprompt": reprompt,
        }
        return ms, mask


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m skinscreen.export.torch_bench")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="litemedsam")
    ap.add_argument("--once", default=None, help="cold start: one photo, then exit")
    ap.add_argument("--box", default=None, help="X0,Y0,X1,Y1 for --once")
    a = ap.parse_args(argv)
    pipe = TorchPipeline(a.model, a.threads)
    if a.once:
        box = np.array([float(v) for v in a.box.split(",")])
        pipe.run(a.once, box)
        from skinscreen.bench.coldstart import peak_rss_mb

        out = {"first_mask_s": time.perf_counter() - T_START, "peak_rss_mb": peak_rss_mb()}
        print(json.dumps(out), flush=True)
        return
    print(json.dumps({"ready": True, "startup_s": time.perf_counter() - T_START}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        ms, mask = pipe.run(
            req["image"],
            np.asarray(req["box"], dtype=np.float64),
            [np.asarray(b, dtype=np.float64) for b in req.get("reprompt_boxes", [])],
        )
        np.save(req["mask_out"], mask)
        print(json.dumps(ms), flush=True)


if __name__ == "__main__":
    main()
