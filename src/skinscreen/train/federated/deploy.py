"""A real deployment on Flower's SuperLink / SuperNode processes.

- The coordinator (``skinscreen federate server``) starts ``flower-superlink`` (TLS with
  ``--certfile/--keyfile/--ca-certfile``, else ``--insecure``), waits for ``--min-clients``
  SuperNodes, submits the run with ``flwr run`` (a Flower App whose components are
  :data:`skinscreen.train.federated.apps.server_app` / ``client_app``, settings as run config),
  streams its log, then stops the SuperLink.
- A site (``skinscreen federate client --data DIR``) runs ``flower-supernode`` pointed at the
  coordinator, its settings (data folder, DP, audit log) in ``--node-config``; the SuperNode runs
  the ClientApp on this machine, so photos and embeddings stay here.

Runtime dependency installation (``uv sync`` of the app) is off: the sites run the installed
skinscreen.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from skinscreen.errors import SkinscreenError

APP_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "skinscreen-federated"
version = "1.0.0"
description = "skinscreen federated fine-tuning of the mask decoder (runs the installed skinscreen)"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "skinscreen"

[tool.flwr.app.components]
serverapp = "skinscreen.train.federated.apps:server_app"
clientapp = "skinscreen.train.federated.apps:client_app"

[tool.flwr.app.config]
{config}
"""


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    if here.is_file():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise SkinscreenError(f"{name} not found: pip install 'skinscreen[federated]'")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_app(app_dir: Path, run_config: dict) -> Path:
    """The Flower App folder ``flwr run`` packs (pyproject only: the code is skinscreen's)."""
    app_dir.mkdir(parents=True, exist_ok=True)
    cfg = "\n".join(f"{k} = {_toml_value(v)}" for k, v in run_config.items())
    (app_dir / "pyproject.toml").write_text(APP_PYPROJECT.format(config=cfg), encoding="utf-8")
    return app_dir


def tls_args(certfile: Path | None, keyfile: Path | None, ca_certfile: Path | None) -> list[str]:
    if certfile is None and keyfile is None:
        return ["--insecure"]
    if not (certfile and keyfile and ca_certfile):
        raise SkinscreenError("TLS needs --certfile, --keyfile and --ca-certfile together")
    return [
        "--ssl-certfile",
        str(certfile),
        "--ssl-keyfile",
        str(keyfile),
        "--ssl-ca-certfile",
        str(ca_certfile),
    ]


def start_superlink(
    host: str, port: int, work: Path, tls: list[str], log: Path
) -> subprocess.Popen:
    """``flower-superlink`` on ``host:port`` (Fleet, Control and ServerAppIo over HTTP)."""
    cmd = [
        _bin("flower-superlink"),
        *tls,
        "--host",
        host,
        "--port",
        str(port),
        "--database",
        str(work / "superlink.db"),
        "--disable-runtime-dependency-installation",
    ]
    return subprocess.Popen(
        cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=_env(work), cwd=work
    )


def start_supernode(
    superlink: str,
    node_config: dict,
    work: Path,
    root_certificates: Path | None,
    log: Path | None = None,
    port: int | None = None,
) -> subprocess.Popen:
    """``flower-supernode`` connected to ``superlink`` (``host:port``) with ``node_config``."""
    nc = " ".join(f"{k}={_toml_value(v)}" for k, v in node_config.items())
    cmd = [
        _bin("flower-supernode"),
        *(["--root-certificates", str(root_certificates)] if root_certificates else ["--insecure"]),
        "--superlink",
        superlink,
        "--node-config",
        nc,
        "--host",
        "127.0.0.1",
        "--port",
        str(port or free_port()),
    ]
    out = log.open("ab") if log else None
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_env(work), cwd=work)


def _env(work: Path) -> dict:
    env = dict(os.environ)
    env["FLWR_HOME"] = str(work / "flwr-home")
    # the SuperLink / SuperNode start flower-superexec, flwr-serverapp, flwr-clientapp by name
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    src = str(Path(__file__).resolve().parents[3])  # the skinscreen source root (its src/)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    return env


def write_connection(work: Path, address: str, root_certificates: Path | None) -> str:
    """A ``flwr`` CLI config (``$FLWR_HOME/config.toml``) naming the local SuperLink."""
    home = work / "flwr-home"
    home.mkdir(parents=True, exist_ok=True)
    lines = ["[superlink]", 'default = "skinscreen"', "", "[superlink.skinscreen]"]
    lines.append(f'address = "{address}"')
    if root_certificates:
        lines.append(f'root-certificates = "{root_certificates}"')
    else:
        lines.append("insecure = true")
    (home / "config.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return "skinscreen"


def wait_port(host: str, port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise SkinscreenError(f"flower-superlink exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise SkinscreenError(f"flower-superlink did not listen on {host}:{port} in {timeout:.0f} s")


def run_app(
    work: Path,
    app_dir: Path,
    connection: str,
    run_config: dict,
    timeout: float,
    log: Path,
) -> int:
    """``flwr run APP CONNECTION --stream``; returns its exit code."""
    rc = " ".join(f"{k}={_toml_value(v)}" for k, v in run_config.items())
    cmd = [_bin("flwr"), "run", str(app_dir), connection, "--run-config", rc, "--stream"]
    with log.open("ab") as f:
        p = subprocess.run(
            cmd, stdout=f, stderr=subprocess.STDOUT, env=_env(work), cwd=work, timeout=timeout
        )
    return p.returncode


def stop(proc: subprocess.Popen | None, grace: float = 10) -> None:
    """Terminate one process this module started (by its own handle)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
