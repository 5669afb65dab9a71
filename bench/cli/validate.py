"""`bench validate`: resolve every run of the presets (every hyperparameter checked) without training."""
from __future__ import annotations

import argparse

from bench.cli.args import non_empty
from bench.core.errors import UsageError


def add_to(sub: argparse._SubParsersAction) -> None:
    val = sub.add_parser("validate", help="resolve every run of the presets without training")
    val.add_argument("--preset", type=non_empty, help="default: all presets")
    val.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bench.grid.presets import PRESETS, expand

    for name in [args.preset] if args.preset else PRESETS.names():
        runs = expand(name)
        ids = {cfg.run_id for cfg in runs}
        if len(ids) != len(runs):
            raise UsageError(f"preset '{name}' has {len(runs) - len(ids)} duplicate runs")
        print(f"{name}: {len(runs)} runs resolve")
    return 0
