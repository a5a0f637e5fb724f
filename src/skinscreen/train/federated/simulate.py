"""A local simulation on Flower's simulation engine (Ray, kept on 127.0.0.1 in a private temp
dir; it never joins another Ray cluster on the machine)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from skinscreen.train.federated.apps import (
    ServerSettings,
    SiteSettings,
    make_client_app,
    make_server_app,
)


def simulate(sites: list[Path], server: ServerSettings, site: SiteSettings, cpus: int = 2) -> dict:
    """Run ``server.rounds`` rounds with one virtual SuperNode per site folder; returns the
    provenance (also in ``server.out_dir``)."""
    import json

    from flwr.simulation import run_simulation

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.pop("RAY_ADDRESS", None)
    from skinscreen._offline import contain_local_ray

    tmp = Path(tempfile.mkdtemp(prefix="skinscreen-ray-"))
    server.sites = [Path(s).name for s in sites]
    server.min_clients = len(sites)
    server.dp_epsilon, server.dp_delta, server.dp_clip = (
        (site.dp_epsilon, site.dp_delta, site.dp_clip) if site.dp_epsilon > 0 else (0.0, 0.0, 0.0)
    )
    backend = {
        "init_args": {
            "address": "local",
            "num_cpus": cpus,
            "include_dashboard": False,
            "_temp_dir": str(tmp),
            "_node_ip_address": "127.0.0.1",
            "log_to_driver": True,
        },
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
    }
    with contain_local_ray():  # Ray's usage-stats process probes cloud metadata
        run_simulation(
            server_app=make_server_app(server),
            client_app=make_client_app(site, sites=[str(Path(s).resolve()) for s in sites]),
            num_supernodes=len(sites),
            backend_config=backend,
        )
    prov = Path(server.out_dir) / "provenance.json"
    if not prov.is_file():
        from skinscreen.errors import SkinscreenError

        raise SkinscreenError(f"the simulation wrote no result in {server.out_dir}: see its log")
    return json.loads(prov.read_text(encoding="utf-8"))
