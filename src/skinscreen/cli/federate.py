"""``skinscreen federate``: federated fine-tuning of the mask decoder with Flower.

``server`` (the coordinator: a Flower SuperLink + the run), ``client`` (a site: a Flower
SuperNode training on its own photos), ``simulate`` (all sites on this machine, Flower's
simulation engine), ``export`` (the result as a registered model bundle). Only parameters leave a
site: docs/federated.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

_DIR = click.Path(file_okay=False, path_type=Path)
_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)


def _training_options(f):
    opts = [
        click.option("--rounds", type=int, default=3, show_default=True),
        click.option(
            "--strategy",
            type=click.Choice(["fedavg", "fedprox", "fedadam"]),
            default="fedavg",
            show_default=True,
            help="FedProx / FedAdam handle uneven sites.",
        ),
        click.option(
            "--local-steps",
            type=int,
            default=50,
            show_default=True,
            help="Training steps (one photo each) per site and round.",
        ),
        click.option("--lr", type=float, default=5e-5, show_default=True),
        click.option(
            "--proximal-mu", type=float, default=0.01, show_default=True, help="FedProx's mu."
        ),
        click.option(
            "--server-lr", type=float, default=1e-3, show_default=True, help="FedAdam's eta."
        ),
        click.option("--model", default="litemedsam", show_default=True, help="Base model."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option(
            "--out",
            "out_dir",
            type=_DIR,
            required=True,
            help="Run folder: round checkpoints, decoder.safetensors, provenance.json.",
        ),
        click.option(
            "--resume", is_flag=True, help="Continue after the last checkpointed round in --out."
        ),
        click.option(
            "--evaluate/--no-evaluate",
            default=True,
            show_default=True,
            help="Sites score every round's model on their held-out photos.",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the provenance as JSON."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _site_options(f):
    opts = [
        click.option(
            "--views", type=int, default=2, show_default=True, help="Cached views per photo."
        ),
        click.option(
            "--holdout-folds",
            type=int,
            default=5,
            show_default=True,
            help="Hold out 1/k of the site's patients for evaluation (0: none).",
        ),
        click.option("--cache-dir", type=_DIR, default=None, help="Embedding cache."),
        click.option(
            "--dp-epsilon",
            type=float,
            default=0.0,
            show_default=True,
            help="Site-level differential privacy: epsilon per round (0: off).",
        ),
        click.option("--dp-delta", type=float, default=1e-5, show_default=True),
        click.option(
            "--dp-clip",
            type=float,
            default=0.5,
            show_default=True,
            help="L2 bound of a round's update (also the DP sensitivity).",
        ),
        click.option(
            "--audit-dir",
            type=_DIR,
            default=None,
            help="Keep every outgoing message (serialized bytes + a JSON summary) here.",
        ),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _server_settings(kw: dict):
    from skinscreen.train.federated.apps import ServerSettings

    return ServerSettings(
        rounds=kw["rounds"],
        strategy=kw["strategy"],
        local_steps=kw["local_steps"],
        lr=kw["lr"],
        proximal_mu=kw["proximal_mu"],
        server_lr=kw["server_lr"],
        out_dir=str(Path(kw["out_dir"]).resolve()),
        resume=kw["resume"],
        model=kw["model"],
        seed=kw["seed"],
        evaluate=kw["evaluate"],
    )


def _site_settings(kw: dict):
    from skinscreen.train.federated.apps import SiteSettings

    if kw["dp_epsilon"] < 0 or kw["dp_clip"] <= 0 or not 0 < kw["dp_delta"] < 1:
        raise click.BadParameter("need --dp-epsilon >= 0, --dp-clip > 0, 0 < --dp-delta < 1")
    return SiteSettings(
        model=kw.get("model", "litemedsam"),
        views=kw["views"],
        holdout_folds=kw["holdout_folds"],
        cache_dir=str(kw["cache_dir"].resolve()) if kw["cache_dir"] else "",
        dp_epsilon=kw["dp_epsilon"],
        dp_delta=kw["dp_delta"],
        dp_clip=kw["dp_clip"],
        audit_dir=str(kw["audit_dir"].resolve()) if kw["audit_dir"] else "",
    )


def _report(prov: dict, as_json: bool, out_dir: Path) -> None:
    if as_json:
        click.echo(json.dumps({k: v for k, v in prov.items() if k != "history"}))
        return
    last = prov["history"][-1] if prov.get("history") else {}
    ev = last.get("evaluate", [])
    dice = [r.get("dice-gt-box-jitter") for r in ev]
    dp = prov.get("dp")
    dp_txt = (
        f"; DP epsilon {dp['epsilon_per_round']:g}/round, {dp['epsilon_total']:g} in all "
        f"(delta {dp['delta_total']})"
        if dp
        else ""
    )
    click.echo(
        f"{prov['rounds']} rounds of {prov['strategy']} over {len(prov['site_photos'])} sites "
        f"({sum(prov['site_photos'])} training photos){dp_txt}; held-out Dice (gt-box-jitter) "
        f"per site after the last round: {', '.join(f'{d:.4f}' for d in dice if d is not None)}; "
        f"decoder + provenance in {out_dir}"
    )


@click.group("federate")
def command():
    """Federated fine-tuning of the mask decoder with Flower: photos never leave a site.

    \b
    Examples:
      skinscreen federate simulate --sites clinicA,clinicB,clinicC --rounds 3 --out runs/fed
      skinscreen federate server --out runs/fed --min-clients 3 --port 9092 \\
          --certfile server.pem --keyfile server.key --ca-certfile ca.pem
      skinscreen federate client --data clinicA --superlink coordinator:9092 --root-certificates ca.pem
      skinscreen federate export --run runs/fed --name litemedsam-fed
    """


@command.command("simulate")
@click.option(
    "--sites",
    required=True,
    help="Comma-separated site folders (each with images/ and masks/).",
)
@_training_options
@_site_options
@click.option("--cpus", type=int, default=2, show_default=True, help="CPUs for Flower's Ray.")
def simulate_cmd(sites, cpus, **kw):
    """Simulate the federation on this machine: one virtual SuperNode per site folder."""
    from skinscreen.export import require_torch

    require_torch("skinscreen federate")
    from skinscreen.train.federated.simulate import simulate

    dirs = [Path(s) for s in sites.split(",") if s]
    missing = [str(d) for d in dirs if not (d / "images").is_dir() or not (d / "masks").is_dir()]
    if len(dirs) < 2 or missing:
        raise click.BadParameter(
            f"need 2 or more site folders with images/ and masks/; not usable: {missing}",
            param_hint="--sites",
        )
    prov = simulate(dirs, _server_settings(kw), _site_settings(kw), cpus=cpus)
    _report(prov, kw["as_json"], kw["out_dir"])


@command.command("server")
@_training_options
@click.option("--min-clients", type=int, default=2, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=9092, show_default=True, help="0: a free port.")
@click.option("--certfile", type=_FILE, default=None, help="TLS server certificate (PEM).")
@click.option("--keyfile", type=_FILE, default=None, help="TLS server key (PEM).")
@click.option("--ca-certfile", type=_FILE, default=None, help="CA certificate (PEM).")
@click.option("--timeout", type=float, default=7200, show_default=True, help="Seconds.")
def server_cmd(min_clients, host, port, certfile, keyfile, ca_certfile, timeout, **kw):
    """Coordinate a federation: a Flower SuperLink, then the run (waits for --min-clients)."""
    from skinscreen.errors import SkinscreenError
    from skinscreen.train.federated import deploy

    s = _server_settings(kw)
    s.min_clients = min_clients
    out = Path(s.out_dir)
    work = out / "superlink"
    work.mkdir(parents=True, exist_ok=True)
    port = port or deploy.free_port(host)
    tls = deploy.tls_args(certfile, keyfile, ca_certfile)
    _stop_on_sigterm()
    link = deploy.start_superlink(host, port, work, tls, work / "superlink.log")
    try:
        deploy.wait_port(host, port, link)
        click.echo(
            f"SuperLink listening on {host}:{port}; waiting for {min_clients} sites", err=True
        )
        rc = _run_config(s)
        app = deploy.write_app(work / "app", rc)
        conn = deploy.write_connection(work, f"{host}:{port}", ca_certfile)
        code = deploy.run_app(work, app, conn, rc, timeout, work / "run.log")
        if code != 0 or not (out / "provenance.json").is_file():
            raise SkinscreenError(f"the federated run failed (exit {code}): see {work / 'run.log'}")
    finally:
        deploy.stop(link)
    prov = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
    _report(prov, kw["as_json"], out)


def _run_config(s) -> dict:
    return {
        "rounds": s.rounds,
        "strategy": s.strategy,
        "local-steps": s.local_steps,
        "lr": s.lr,
        "proximal-mu": s.proximal_mu,
        "server-lr": s.server_lr,
        "min-clients": s.min_clients,
        "out-dir": s.out_dir,
        "resume": s.resume,
        "model": s.model,
        "seed": s.seed,
        "evaluate": s.evaluate,
    }


@command.command("client")
@click.option("--data", "data_dir", type=_DIR, required=True, help="images/ + masks/ of this site.")
@click.option(
    "--superlink", default="127.0.0.1:9092", show_default=True, help="Coordinator host:port."
)
@click.option("--root-certificates", type=_FILE, default=None, help="CA certificate (TLS).")
@click.option("--model", default="litemedsam", show_default=True)
@_site_options
@click.option("--name", "site_name", default="", help="A label for this site's log lines.")
def client_cmd(data_dir, superlink, root_certificates, site_name, **kw):
    """Join a federation as a site: train on the photos in --data, send parameters only."""
    from skinscreen.train.federated import deploy

    if not (data_dir / "images").is_dir() or not (data_dir / "masks").is_dir():
        raise click.BadParameter(f"{data_dir} needs images/ and masks/", param_hint="--data")
    s = _site_settings(kw)
    node = {
        "data-dir": str(data_dir.resolve()),
        "model": s.model,
        "views": s.views,
        "holdout-folds": s.holdout_folds,
        "cache-dir": s.cache_dir,
        "dp-epsilon": s.dp_epsilon,
        "dp-delta": s.dp_delta,
        "dp-clip": s.dp_clip,
        "audit-dir": s.audit_dir,
        "site-name": site_name or data_dir.name,
    }
    from skinscreen import paths

    # the SuperNode's working folder: next to the embedding cache (default $SKINSCREEN_HOME)
    home = Path(s.cache_dir).parent if s.cache_dir else paths.home()
    work = home / "federate" / f"supernode-{data_dir.resolve().name}"
    work.mkdir(parents=True, exist_ok=True)
    _stop_on_sigterm()
    proc = deploy.start_supernode(superlink, node, work, root_certificates)
    click.echo(f"SuperNode for {data_dir} connected to {superlink} (Ctrl-C to leave)", err=True)
    code = 1
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        code = 0
    finally:
        deploy.stop(proc)
    sys.exit(code)


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the Flower process this command started is stopped."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@command.command("export")
@click.option("--run", "run_dir", type=_DIR, required=True, help="A federated run's --out.")
@click.option("--name", default="litemedsam-fed", show_default=True, help="Model name.")
@click.option("--out", "out_dir", type=_DIR, default=None, help="Bundle folder.")
@click.option("--force", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def export_cmd(run_dir, name, out_dir, force, as_json):
    """Register the run's decoder as model NAME and export its bundle (same parity gates)."""
    from skinscreen.export import require_torch

    require_torch("skinscreen federate export")
    from skinscreen.export.bundle import export_bundle
    from skinscreen.train.federated.asset import register_run

    spec = register_run(run_dir, name)
    path = export_bundle(spec.name, out_dir, force=force)
    if as_json:
        click.echo(json.dumps({"model": spec.name, "bundle": str(path)}))
    else:
        click.echo(f"{spec.name} bundle written to {path}")
