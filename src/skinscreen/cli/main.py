"""The ``skinscreen`` command group.

Each verb lives in its own module ``skinscreen.cli.<verb>`` exposing a click command named
``command``; modules are imported only when their verb runs, so ``skinscreen --version`` and
``skinscreen --help`` are instant. Exit codes: 0 ok, 1 failure (any item failed), 2 usage error.
"""

from __future__ import annotations

import importlib
import sys

import click

from skinscreen._version import __version__

# verb -> (module, one-line help). Add a verb by adding a line here and a module in cli/.
COMMANDS: dict[str, tuple[str, str]] = {
    "segment": ("skinscreen.cli.segment", "Segment lesions in photos (box prompt or automatic)."),
    "assess": (
        "skinscreen.cli.assess",
        "Measure lesions (size, ABC features, skin tone, quality); heatmap and HTML report.",
    ),
    "compare": ("skinscreen.cli.compare", "Compare the same lesion in two photos (visits)."),
    "serve": (
        "skinscreen.cli.serve",
        "Run the local web app (photo -> box -> outline; on-device mode).",
    ),
    "distill": (
        "skinscreen.cli.distill",
        "Train a smaller, faster student image encoder from a teacher.",
    ),
    "finetune": (
        "skinscreen.cli.finetune",
        "Fine-tune the mask decoder on labelled skin photos (k-fold CV).",
    ),
    "train-localiser": (
        "skinscreen.cli.train_localiser",
        "Train the automatic-mode lesion localiser (k-fold CV, then ship).",
    ),
    "stream": (
        "skinscreen.cli.stream",
        "Segment and track a lesion through a video file or camera feed.",
    ),
    "batch": ("skinscreen.cli.batch", "Segment, assess or evaluate a whole archive on Ray Data."),
    "bench": (
        "skinscreen.cli.bench",
        "Benchmark PyTorch, ONNX Runtime and every bundle variant on the same photos.",
    ),
    "evaluate": (
        "skinscreen.cli.evaluate",
        "Score masks against expert masks (Dice, Jaccard, ISIC rule).",
    ),
    "export": (
        "skinscreen.cli.export",
        "Build a model bundle (ONNX encoder/decoder + manifest) from PyTorch weights.",
    ),
    "cases": (
        "skinscreen.cli.cases",
        "Keep lesions and their visits over time in a local file (opt-in case history).",
    ),
    "federate": (
        "skinscreen.cli.federate",
        "Federated fine-tuning of the mask decoder with Flower (server, client, simulate).",
    ),
    "models": (
        "skinscreen.cli.models",
        "List model bundles present, their sizes and parity figures.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(COMMANDS[name][0])
        return module.command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="skinscreen")
def cli() -> None:
    """skinscreen: offline skin-lesion segmentation and screening (LiteMedSAM on ONNX Runtime).

    A screening aid, never a diagnosis.

    \b
    First steps:
      skinscreen export                      # build the default model bundle (needs [export])
      skinscreen segment photo.jpg --box X0,Y0,X1,Y1 --out results/
      skinscreen assess photo.jpg --box X0,Y0,X1,Y1 --mm-per-pixel 0.02 --out report/
      skinscreen serve                       # the web app on http://127.0.0.1:8000/
      skinscreen evaluate --images imgs/ --masks masks/ --json
      skinscreen models                      # which model and variant run on this CPU
    """


def main(argv: list[str] | None = None) -> None:
    from skinscreen.cli.common import build_missing_bundle
    from skinscreen.engine.bundle import set_bundle_builder
    from skinscreen.errors import SkinscreenError

    set_bundle_builder(build_missing_bundle)  # the CLI builds a missing bundle on first use

    try:
        cli.main(args=argv, prog_name="skinscreen", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except SkinscreenError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    sys.exit(0)
