"""The typer application objects. Command modules import these and register on them."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="in21k-bench",
    help="ImageNet-21K clustering benchmarks: manifests, evaluation, reference methods, hub, leaderboard.\n\n"
    "Results go to stdout (use --json for machine-readable output); logs and progress go to stderr.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
features_app = typer.Typer(help="Extract, simulate and inspect feature stores.", no_args_is_help=True)
fit_app = typer.Typer(help="Fit a reference clustering method and write predictions.", no_args_is_help=True)
leaderboard_app = typer.Typer(help="Build and check the leaderboard.", no_args_is_help=True)
app.add_typer(features_app, name="features")
app.add_typer(fit_app, name="fit")
app.add_typer(leaderboard_app, name="leaderboard")


def _version(value: bool) -> None:
    if value:
        from ..version import __version__

        print(f"in21k-bench {__version__}")
        raise typer.Exit()


@app.callback()
def _main_options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the package version and exit."
    ),
) -> None:
    """ImageNet-21K clustering benchmarks: manifests, evaluation, reference methods, hub, leaderboard."""
