"""Cold-start child: a fresh process that opens a bundle and segments one photo.

``python -m skinscreen.bench.coldstart BUNDLE VARIANT IMAGE X0,Y0,X1,Y1 [THREADS [BOX_CHECK]]``
(BOX_CHECK: ``auto``, ``on`` or ``off``, the predictor's ``box_check``) prints one
JSON line when the first mask exists; the parent times it from process creation and reads the
child's peak RSS from ``os.wait4``. Runtime path only (no torch).
"""

from __future__ import annotations

import time
from pathlib import Path

T_START = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402


def peak_rss_mb() -> float | None:
    """This process's peak resident set size (``VmHWM`` of /proc/self/status), MB.

    Read by the process itself: ``ru_maxrss`` from ``wait4`` can report the forking parent's
    high-water mark on Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str]) -> None:
    bundle, variant, image, box = argv[:4]
    threads = int(argv[4]) if len(argv) > 4 else 2
    box_check = {"auto": None, "on": True, "off": False}[argv[5] if len(argv) > 5 else "auto"]
    from skinscreen.predictor import LesionPredictor

    t_import = time.perf_counter()
    from skinscreen.engine.bundle import read_manifest

    model = read_manifest(Path(bundle))["model"]  # a student's bundle holds another model
    p = LesionPredictor(
        model, bundle_dir=bundle, variant=variant, threads=threads, box_check=box_check
    )
    t_session = time.perf_counter()
    p.set_image(image)
    seg = p.predict(box=[float(v) for v in box.split(",")])
    t_mask = time.perf_counter()
    print(
        json.dumps(
            {
                "import_s": t_import - T_START,
                "sessions_s": t_session - t_import,
                "first_mask_s": t_mask - T_START,
                "area_px": seg.area_px,
                "peak_rss_mb": peak_rss_mb(),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
