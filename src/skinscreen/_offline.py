"""Keep skinscreen offline: switch off every dependency's telemetry before it is imported.

Imported first by ``skinscreen/__init__.py``, so the CLI, the library (``import skinscreen...``),
the web server and every subprocess or worker that imports skinscreen get it; the variables are
set in ``os.environ``, so child processes inherit them even before they import anything.

- ONNX Runtime: ``import onnxruntime`` otherwise writes
  ``~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db}`` (queued telemetry
  events) and may look up Microsoft's telemetry host. ``ORT_DISABLE_TELEMETRY=1`` must be set
  before the first import; :func:`quiet_onnxruntime` also calls
  ``onnxruntime.disable_telemetry_events()`` once the module is loaded.
- OpenVINO: the runtime (``openvino.Core``) sends nothing; only the model-conversion tools
  (``openvino.tools.ovc`` / ``openvino.convert_model``) use ``openvino_telemetry``, which sends
  Google Analytics events unless a consent file says no. skinscreen never calls them (a test
  checks the source); :func:`quiet_openvino_telemetry` switches the singleton off should anything
  import it anyway.
- Generic opt-outs that some libraries honour (``DO_NOT_TRACK``), Hugging Face, Ray usage stats.
"""

from __future__ import annotations

import contextlib
import os
import sys

# name -> value; forced (not setdefault): nothing in skinscreen may phone home
TELEMETRY_ENV: dict[str, str] = {
    "ORT_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_USAGE_STATS_PROMPT_ENABLED": "0",
}


def disable_telemetry() -> None:
    """Set the opt-out variables in this process (and so in every child it starts)."""
    for name, value in TELEMETRY_ENV.items():
        os.environ[name] = value
    if "onnxruntime" in sys.modules:
        quiet_onnxruntime(sys.modules["onnxruntime"])
    if "openvino_telemetry" in sys.modules:
        quiet_openvino_telemetry()


#: a loopback port nothing listens on (discard): HTTP sent through it fails at once, locally
DEAD_PROXY = "http://127.0.0.1:9"
_LOOPBACK = "127.0.0.1,localhost,::1"


@contextlib.contextmanager
def contain_local_ray():
    """Around the start of a local Ray (``batch``, Flower's simulation): the processes Ray starts
    route HTTP through a dead loopback proxy, loopback itself excepted; this process's own
    environment is restored afterwards.

    Ray's usage-stats module (the one process of its dashboard that runs with
    ``include_dashboard=False``) probes the cloud metadata address 169.254.169.254 at start even
    with usage stats switched off (``RAY_USAGE_STATS_ENABLED=0``): through the dead proxy that
    request never leaves the machine. Ray's own traffic (gRPC on 127.0.0.1) is unaffected; the
    raylet's workers inherit its environment. Not for ``--ray-address``: a cluster's network is
    its owner's.
    """
    names = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY")
    saved = {n: os.environ.get(n) for n in (*names, "NO_PROXY", "no_proxy")}
    os.environ.update({n: DEAD_PROXY for n in names})
    os.environ.update({"NO_PROXY": _LOOPBACK, "no_proxy": _LOOPBACK})
    try:
        yield
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def quiet_onnxruntime(ort=None) -> None:
    """``onnxruntime.disable_telemetry_events()`` (ORT builds without it are left alone)."""
    if ort is None:
        import onnxruntime as ort
    fn = getattr(ort, "disable_telemetry_events", None)
    if fn is not None:
        fn()


def quiet_openvino_telemetry() -> None:
    """Make ``openvino_telemetry``'s consent check answer "declined" (nothing written to HOME).

    With no consent file the OpenVINO conversion tools count as consenting; declining at the
    check means no client-id file, no opt-in event and no sender. No-op when it is not installed.
    """
    try:
        from openvino_telemetry.utils import opt_in_checker as oic
    except Exception:
        return
    checker = getattr(oic, "OptInChecker", None)
    declined = getattr(getattr(oic, "ConsentCheckResult", None), "DECLINED", None)
    if checker is None or declined is None:
        return

    def check(self, *args, **kwargs):
        return declined

    checker.check = check


disable_telemetry()
