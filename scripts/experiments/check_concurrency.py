"""Box check side by side (sixth session, BENCHMARKS.md): the model's decoder and the box check's
decoder back to back vs in two threads (both engines release the GIL) vs the model's alone, on
one dev photo and box, median of 40 alternating repetitions.

Usage: python scripts/experiments/check_concurrency.py openvino|onnxruntime THREADS
"""

import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from skinscreen.predictor import LesionPredictor


def main() -> None:
    engine, threads = sys.argv[1], int(sys.argv[2])
    p = LesionPredictor("litemedsam", engine=engine, box_check=True, threads=threads)
    enc = p.set_image("../shared/data/lesions-dev/images/ISIC_0012099.jpg")
    box = enc.transform.apply_boxes(np.array([400, 150, 610, 450.0]))
    check = p.box_checker.engine
    pool = ThreadPoolExecutor(1)

    def sequential():
        p.decode_logits(box)
        check.decode(enc.embedding, box)

    def side_by_side():
        pending = pool.submit(check.decode, enc.embedding, box)
        p.decode_logits(box)
        pending.result()

    def one():
        p.decode_logits(box)

    runs = (sequential, side_by_side, one)
    for fn in runs:
        fn()
    times: dict[str, list[float]] = {fn.__name__: [] for fn in runs}
    for _ in range(40):
        for fn in runs:
            t = time.perf_counter()
            fn()
            times[fn.__name__].append((time.perf_counter() - t) * 1e3)
    print(engine, threads, {k: round(statistics.median(v), 1) for k, v in times.items()})


if __name__ == "__main__":
    main()
