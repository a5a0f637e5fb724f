"""``skinscreen models``: what is registered and which bundles are built."""

from __future__ import annotations

import json

import click


def this_cpu(manifest: dict, root) -> dict:
    """Which variant and engine this CPU runs for ``manifest`` (``engine="auto"``), why, and
    which faster or refused variants it passes over and why (``refused``)."""
    from skinscreen.engine import openvino as ovmod
    from skinscreen.engine.cpu import cpu_info
    from skinscreen.engine.select import choose_engine, cpu_default, default_engine, regate_command

    cpu = cpu_info()
    try:
        c = choose_engine(
            manifest,
            engine=default_engine(),
            openvino_available=ovmod.openvino_available(),
            cpu_bf16=ovmod.cpu_supports_bf16,
            isa=cpu["isa"],
        )
    except Exception as e:  # e.g. an engine asked for in $SKINSCREEN_ENGINE that cannot run
        return {"isa": cpu["isa"], "flags": cpu["flags"], "error": str(e), "refused": {},
                "variant": "?", "engine": "?", "reason": str(e)}  # fmt: skip
    _, _, refused = cpu_default(manifest, cpu["isa"])
    refused = {
        k: why.replace(regate_command(manifest, k), regate_command(manifest, k, root))
        for k, why in refused.items()
        if k != c.variant
    }
    return {
        "isa": cpu["isa"],
        "flags": cpu["flags"],
        "variant": c.variant,
        "engine": c.engine,
        "precision": c.precision,
        "reason": c.reason,
        "refused": refused,
    }


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.option(
    "--card",
    "card",
    default=None,
    metavar="NAME",
    help="Print the model card of NAME (Markdown with YAML front matter, as model hubs use: "
    "intended use, training data and licences, accuracy per data set and skin-tone group, "
    "failure modes). Every bundle holds it as MODEL_CARD.md.",
)
def command(as_json, card):
    """List registered models, the bundles present, their sizes and parity figures."""
    if card is not None:
        from skinscreen.modelcard import render_card
        from skinscreen.spec import REGISTRY

        if card not in REGISTRY:
            raise click.BadParameter(
                f"unknown model '{card}': choose one of {', '.join(sorted(REGISTRY))}",
                param_hint="--card",
            )
        click.echo(render_card(card), nl=False)
        return
    from skinscreen import paths
    from skinscreen.engine.bundle import OPTIONAL_PARTS, list_bundles, read_manifest
    from skinscreen.spec import REGISTRY

    bundles = {}
    for root in list_bundles():
        try:
            m = read_manifest(root)
        except Exception as e:  # a broken bundle is listed, not fatal
            bundles[root.name] = {"path": str(root), "error": str(e)}
            continue
        variants = {
            name: {
                "bytes": sum(int(f["bytes"]) for f in v["files"].values()),
                # what an app must ship (the re-prompt pair is optional)
                "required_bytes": sum(
                    int(f["bytes"]) for p, f in v["files"].items() if p not in OPTIONAL_PARTS
                ),
                "format": v.get("format"),
                "precision": v.get("precision"),
                "accuracy": v.get("accuracy"),
            }
            for name, v in m["variants"].items()
        }
        bundles[root.name] = {
            "path": str(root),
            "model": m["model"],
            "default_variant": m["default_variant"],
            "this_cpu": this_cpu(m, root),
            "variants": variants,
            "parity": m.get("parity"),
        }
    registered = {
        name: {
            "description": s.description,
            "input_size": s.input_size,
            "default": s.default,
            "built": name in bundles,
        }
        for name, s in REGISTRY.items()
    }
    if as_json:
        click.echo(
            json.dumps(
                {"home": str(paths.home()), "models": registered, "bundles": bundles}, indent=2
            )
        )
        return
    click.echo(f"bundle cache: {paths.bundles_dir()}")
    for name, r in registered.items():
        flag = "built" if r["built"] else "not built"
        click.echo(
            f"  {name:<14} {r['input_size']:>5} px  {flag}{'  (default)' if r['default'] else ''}  {r['description']}"
        )
    for name, b in bundles.items():
        if "error" in b:
            click.echo(f"\n{name}: BROKEN: {b['error']}")
            continue
        click.echo(f"\n{name} ({b['path']}), default variant {b['default_variant']}")
        c = b["this_cpu"]
        click.echo(f"  this CPU ({c['isa']}) runs {c['variant']} in {c['engine']}: {c['reason']}")
        for k, why in c["refused"].items():
            click.echo(f"    not {k}: {why}")
        for vname, v in b["variants"].items():
            extra = v["bytes"] - v["required_bytes"]
            opt = f" (+{extra / 1e6:.1f} MB optional re-prompt pair)" if extra else ""
            click.echo(f"  {vname:<16} {v['required_bytes'] / 1e6:7.1f} MB{opt}")
        p = b.get("parity") or {}
        if p:
            click.echo(
                f"  parity vs PyTorch: logits max |diff| {_g(p.get('logits_max_abs_diff'))}, "
                f"mask Dice mean {_g(p.get('mask_dice_mean'))} (min {_g(p.get('mask_dice_min'))})"
            )


def _g(value) -> str:
    """A figure for people: 3 significant digits (9.9e-05, 0.994); n/a when absent."""
    return "n/a" if value is None else f"{float(value):.3g}"
