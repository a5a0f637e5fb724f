"""Flower apps on the Message API: one :class:`flwr.serverapp.ServerApp` (the coordinator) and one
:class:`flwr.clientapp.ClientApp` (a site), used both by the simulation engine and by a real
SuperLink / SuperNode deployment.

What a site sends back, per round: one ``ArrayRecord`` ``"arrays"`` holding the prompt encoder and
mask decoder parameters (the keys of :func:`skinscreen.train.federated.task.get_parameters`) and
one ``MetricRecord`` ``"metrics"`` of numbers (photo counts, mean losses, held-out Dice). No
photo, mask, embedding, photo id or file name is put into any message. Optional, site-side:

- differential privacy (``dp-epsilon`` > 0): Flower's :class:`flwr.clientapp.mod.LocalDpMod`
  clips the round's update (new - received parameters) to L2 norm ``dp-clip`` and adds Gaussian
  noise of std ``dp-clip * sqrt(2 ln(1.25 / dp-delta)) / dp-epsilon`` to every parameter: each
  round's release is (epsilon, delta)-DP for the whole site (sensitivity = the clipping norm);
  R rounds compose to (R epsilon, R delta) (basic composition; reported as ``epsilon_total``).
- secure aggregation: not on this path (Flower's SecAgg+ runs on its legacy fit workflow).
- an audit log (``audit-dir``): every outgoing message's serialized objects, exactly the bytes
  Flower pushes, with a JSON summary of their records, so a site can check what left it.

Configuration: a simulation passes its settings in Python (:func:`make_client_app`,
:func:`make_server_app`); a deployment passes the site's settings as the SuperNode's
``--node-config`` (``data-dir``, ``dp-epsilon``, ...) and the server's as the run config.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.app.message_type import MessageType
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import LocalDpMod
from flwr.serverapp import Grid, ServerApp

# ---------------------------------------------------------------------------------------------
# settings


@dataclass
class SiteSettings:
    """A site's own settings (SuperNode ``--node-config`` keys: the field names with ``-``)."""

    data_dir: str = ""
    model: str = "litemedsam"
    views: int = 2
    holdout_folds: int = 5
    cache_dir: str = ""
    dp_epsilon: float = 0.0
    dp_delta: float = 1e-5
    dp_clip: float = 0.5
    audit_dir: str = ""
    site_name: str = ""

    @classmethod
    def resolve(cls, base: SiteSettings | None, node_config: dict) -> SiteSettings:
        s = SiteSettings(**asdict(base)) if base else SiteSettings()
        for f in fields(cls):
            key = f.name.replace("_", "-")
            if key in node_config:
                setattr(s, f.name, type(getattr(s, f.name))(node_config[key]))
        return s


@dataclass
class ServerSettings:
    """The coordinator's settings (run-config keys: the field names with ``-``)."""

    rounds: int = 3
    strategy: str = "fedavg"  # fedavg | fedprox | fedadam
    local_steps: int = 50
    lr: float = 5e-5
    proximal_mu: float = 0.01
    server_lr: float = 1e-3  # FedAdam's eta
    min_clients: int = 2
    out_dir: str = ""
    resume: bool = False
    model: str = "litemedsam"
    seed: int = 0
    evaluate: bool = True  # the sites score each round's model on their held-out photos
    sites: list = field(default_factory=list)  # site labels for the provenance (simulation)
    dp_epsilon: float = 0.0  # the sites' DP settings, for the provenance (simulation)
    dp_delta: float = 0.0
    dp_clip: float = 0.0

    @classmethod
    def from_run_config(cls, run_config: dict) -> ServerSettings:
        s = ServerSettings()
        for f in fields(cls):
            key = f.name.replace("_", "-")
            if key in run_config and f.name != "sites":
                v = run_config[key]
                setattr(
                    s,
                    f.name,
                    (str(v).lower() in ("1", "true"))
                    if f.type == "bool"
                    else type(getattr(s, f.name))(v),
                )
        return s


# ---------------------------------------------------------------------------------------------
# client


class _Site:
    """A site's teacher and examples, loaded once per ClientApp process."""

    cache: dict[tuple, object] = {}

    @classmethod
    def get(cls, s: SiteSettings):
        from skinscreen.train.federated.site import load_site
        from skinscreen.train.federated.task import teacher_for

        key = (s.data_dir, s.model, s.views, s.holdout_folds, s.cache_dir)
        if key not in cls.cache:
            if not s.data_dir:
                raise ValueError(
                    "no site data: set data-dir (skinscreen federate client --data DIR)"
                )
            teacher = teacher_for(s.model)
            site = load_site(
                Path(s.data_dir),
                teacher,
                s.views,
                s.holdout_folds,
                Path(s.cache_dir) if s.cache_dir else None,
                name=s.site_name or None,
            )
            cls.cache[key] = (teacher, site)
        return cls.cache[key]


def _to_record(params: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in params.items()})


def _arrays_to_dict(rec: ArrayRecord) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in rec.items()}


def _audit(msg: Message, audit_dir: str) -> None:
    from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects

    d = Path(audit_dir)
    d.mkdir(parents=True, exist_ok=True)
    objs = get_all_nested_objects(msg)
    stem = f"{time.time_ns()}-{msg.metadata.message_type}-{os.getpid()}"
    blob = b"".join(o.deflate() for o in objs.values())
    summary = {
        "message_type": msg.metadata.message_type,
        "bytes": len(blob),
        "objects": [{"type": type(o).__name__, "bytes": len(o.deflate())} for o in objs.values()],
        "array_records": {
            name: {k: {"shape": list(a.shape), "dtype": a.dtype} for k, a in rec.items()}
            for name, rec in msg.content.array_records.items()
        }
        if msg.has_content()
        else {},
        "metric_records": {n: dict(r) for n, r in msg.content.metric_records.items()}
        if msg.has_content()
        else {},
        "config_records": {n: sorted(r) for n, r in msg.content.config_records.items()}
        if msg.has_content()
        else {},
    }
    (d / f"{stem}.bin").write_bytes(blob)
    (d / f"{stem}.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")


def make_client_app(base: SiteSettings | None = None, sites: list[str] | None = None) -> ClientApp:
    """The site's ClientApp. ``sites``: in a simulation, node ``partition-id`` i trains on
    ``sites[i]``; otherwise ``data-dir`` comes from ``base`` or the node config."""

    def settings(ctxt: Context) -> SiteSettings:
        s = SiteSettings.resolve(base, dict(ctxt.node_config))
        if sites:
            i = int(ctxt.node_config["partition-id"])
            s.data_dir = sites[i]
            s.site_name = s.site_name or Path(sites[i]).name
        return s

    def audit_mod(msg: Message, ctxt: Context, call_next) -> Message:
        out = call_next(msg, ctxt)
        s = settings(ctxt)
        if s.audit_dir:
            _audit(out, s.audit_dir)
        return out

    def dp_mod(msg: Message, ctxt: Context, call_next) -> Message:
        s = settings(ctxt)
        if s.dp_epsilon <= 0 or msg.metadata.message_type != MessageType.TRAIN:
            return call_next(msg, ctxt)
        return LocalDpMod(s.dp_clip, s.dp_clip, s.dp_epsilon, s.dp_delta)(msg, ctxt, call_next)

    app = ClientApp(mods=[audit_mod, dp_mod])

    @app.train()
    def train(msg: Message, ctxt: Context) -> Message:
        from skinscreen.train.federated.task import (
            eval_loss,
            get_parameters,
            local_train,
            set_parameters,
        )

        s = settings(ctxt)
        teacher, site = _Site.get(s)
        cfg = msg.content["config"]
        model = teacher.model
        set_parameters(model, _arrays_to_dict(msg.content["arrays"]))
        tag = int(cfg.get("round-offset", 0)) + int(cfg.get("server-round", 0))
        seed = int(cfg.get("seed", 0))
        before = eval_loss(model, teacher.spec, site.train, seed)
        t0 = time.perf_counter()
        train_loss = local_train(
            model,
            teacher.spec,
            site.train,
            int(cfg.get("local-steps", 50)),
            float(cfg.get("lr", 5e-5)),
            float(cfg.get("proximal-mu", 0.0)),
            seed,
            tag=str(tag),
        )
        after = eval_loss(model, teacher.spec, site.train, seed)
        print(
            f"skinscreen federate [{site.name}] round {tag}: {site.n_train_photos} photos, "
            f"loss {before:.4f} -> {after:.4f} ({time.perf_counter() - t0:.1f} s)",
            file=sys.stderr,
        )
        content = RecordDict(
            {
                "arrays": _to_record(get_parameters(model)),
                "metrics": MetricRecord(
                    {
                        "num-examples": site.n_train_photos,
                        "n-train-photos": site.n_train_photos,
                        "n-test-photos": site.n_test_photos,
                        "n-skipped": len(site.skipped),
                        "loss-before": before,
                        "loss-after": after,
                        "train-loss": train_loss,
                        "dp-epsilon": s.dp_epsilon,
                    }
                ),
            }
        )
        return Message(content=content, reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, ctxt: Context) -> Message:
        from skinscreen.train.federated.task import dice_scores, eval_loss, set_parameters

        s = settings(ctxt)
        teacher, site = _Site.get(s)
        model = teacher.model
        set_parameters(model, _arrays_to_dict(msg.content["arrays"]))
        on_train = not site.test
        ex = site.test or [e for e in site.train if e.view == 0]
        d = dice_scores(model, teacher.spec, ex)
        metrics = {
            "num-examples": len({e.id for e in ex}),
            "loss": eval_loss(model, teacher.spec, ex),
            "dice-gt-box": d["gt-box"],
            "dice-gt-box-jitter": d["gt-box-jitter"],
            "on-training-photos": int(on_train),
        }
        return Message(content=RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)

    return app


# ---------------------------------------------------------------------------------------------
# server


def build_strategy(s: ServerSettings, record: list):
    """FedAvg, FedProx (``proximal_mu``) or FedAdam (server learning rate ``server_lr``), sampling
    every connected site each round; ``record`` collects every reply's metrics."""
    from flwr.serverapp import strategy as st
    from flwr.serverapp.strategy.strategy_utils import aggregate_metricrecords

    def recorder(kind: str):
        def aggr(contents: list[RecordDict], weighting_key: str) -> MetricRecord:
            record.append(
                {"kind": kind, "replies": [dict(c["metrics"]) for c in contents if "metrics" in c]}
            )
            return aggregate_metricrecords(contents, weighting_key)

        return aggr

    common = dict(
        fraction_train=1.0,
        fraction_evaluate=1.0 if s.evaluate else 0.0,
        min_train_nodes=s.min_clients,
        min_evaluate_nodes=s.min_clients,
        min_available_nodes=s.min_clients,
        train_metrics_aggr_fn=recorder("train"),
        evaluate_metrics_aggr_fn=recorder("evaluate"),
    )
    name = s.strategy.lower()
    if name == "fedavg":
        return st.FedAvg(**common)
    if name == "fedprox":
        return st.FedProx(**common, proximal_mu=s.proximal_mu)
    if name == "fedadam":
        # eta_l is only used to set the default tau; the sites' optimiser is their own AdamW
        return st.FedAdam(**common, eta=s.server_lr, eta_l=s.lr, tau=1e-9)
    raise ValueError(f"unknown strategy {s.strategy!r}: fedavg, fedprox or fedadam")


def run_server(grid: Grid, s: ServerSettings) -> dict:
    """Run ``s.rounds`` rounds (the remaining ones with ``resume``), checkpoint the global
    parameters after every round in ``s.out_dir``, then write the fine-tuned decoder asset.
    Returns the provenance dict."""
    from skinscreen.train.federated.asset import (
        load_checkpoint_state,
        save_checkpoint_state,
        write_asset,
    )
    from skinscreen.train.federated.task import get_parameters, teacher_for

    if not s.out_dir:
        raise ValueError("no output folder: set out-dir")
    out = Path(s.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = get_parameters(teacher_for(s.model).model)
    done, history, params = 0, [], base
    if s.resume:
        state = load_checkpoint_state(out)
        if state is not None:
            done, history, params = state["round"], state["history"], state["params"]
            print(f"skinscreen federate: resuming after round {done}", file=sys.stderr)
    remaining = s.rounds - done
    record: list = []
    t0 = time.perf_counter()
    if remaining > 0:
        strategy = build_strategy(s, record)

        def on_round(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
            if server_round == 0:
                return None
            entry: dict = {"round": done + server_round}
            for rep in record:
                entry[rep["kind"]] = rep["replies"]
            record.clear()
            history.append(entry)
            save_checkpoint_state(out, entry["round"], history, _arrays_to_dict(arrays))
            return None

        train_cfg = ConfigRecord(
            {"local-steps": s.local_steps, "lr": s.lr, "seed": s.seed, "round-offset": done}
        )
        result = strategy.start(
            grid,
            _to_record(params),
            num_rounds=remaining,
            train_config=train_cfg,
            evaluate_fn=on_round,
        )
        params = _arrays_to_dict(result.arrays)
    wall = time.perf_counter() - t0
    first = history[-1].get("train", []) if history else []
    prov = {
        "base_model": s.model,
        "federated_parts": ["prompt_encoder", "mask_decoder"],
        "framework": _flwr_version(),
        "strategy": s.strategy,
        "proximal_mu": s.proximal_mu if s.strategy == "fedprox" else None,
        "server_lr": s.server_lr if s.strategy == "fedadam" else None,
        "rounds": s.rounds,
        "local_steps": s.local_steps,
        "lr": s.lr,
        "seed": s.seed,
        "sites": s.sites or None,
        "site_photos": [int(r.get("n-train-photos", 0)) for r in first],
        "site_skipped": [int(r.get("n-skipped", 0)) for r in first],
        "dp": _dp_summary(first, s),
        "secure_aggregation": False,
        "history": history,
        "wall_s_this_run": round(wall, 1),
    }
    write_asset(out, params, base, prov)
    return prov


def _dp_summary(replies: list[dict], s: ServerSettings) -> dict | None:
    eps = [float(r.get("dp-epsilon", 0.0)) for r in replies]
    if not any(e > 0 for e in eps) and s.dp_epsilon <= 0:
        return None
    per_round = max(eps + [s.dp_epsilon])
    return {
        "mechanism": "flwr LocalDpMod: per-site update clipping + Gaussian noise on every parameter",
        "epsilon_per_round": per_round,
        "delta_per_round": s.dp_delta or None,
        "clip": s.dp_clip or None,
        "epsilon_total": per_round * s.rounds,
        "delta_total": (s.dp_delta * s.rounds) if s.dp_delta else None,
        "composition": "basic (sum over rounds)",
        "unit": "one site's whole data (site-level DP)",
        "site_epsilons_per_round": eps,
    }


def _flwr_version() -> str:
    from importlib.metadata import version

    return f"flwr {version('flwr')}"


def make_server_app(settings: ServerSettings | None = None) -> ServerApp:
    """The coordinator's ServerApp; without ``settings`` they come from the run config."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        s = settings or ServerSettings.from_run_config(dict(context.run_config))
        prov = run_server(grid, s)
        last = prov["history"][-1] if prov["history"] else {}
        print(
            f"skinscreen federate: {prov['rounds']} rounds done; last evaluation "
            f"{json.dumps(last.get('evaluate', {}))}; asset in {s.out_dir}",
            file=sys.stderr,
        )

    return app


#: components for a Flower deployment (``flwr run``; see skinscreen.train.federated.deploy)
server_app = make_server_app()
client_app = make_client_app()
