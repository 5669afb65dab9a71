"""`bench ls`: the registered names of a kind, with one line each."""
from __future__ import annotations

import argparse

KINDS = ("methods", "datasets", "presets", "backbones", "noise", "layouts", "reports")


def add_to(sub: argparse._SubParsersAction) -> None:
    ls = sub.add_parser("ls", help="list registered names")
    ls.add_argument("what", choices=KINDS)
    ls.set_defaults(handler=run)


def _entries(what: str) -> list[tuple[str, str]]:
    if what == "methods":
        from methods import METHODS

        return [(n, f"{METHODS.describe(n)} [{METHODS.get(n).family}]") for n in METHODS.names()]
    if what == "layouts":
        from analysis.layouts import LAYOUTS

        return [("grid", "every method and cell of the results, grouped by dataset and rho"),
                *((n, LAYOUTS.get(n).title) for n in LAYOUTS.names())]
    if what == "datasets":
        from noisytail_datasets import DATASETS as reg
    elif what == "presets":
        from bench.grid.presets import PRESETS as reg
    elif what == "reports":
        from bench.grid.reports import REPORTS as reg
    elif what == "backbones":
        from bench.nn.backbones import BACKBONES as reg
    else:
        from noisytail_datasets import NOISE_MODELS as reg
    return [(n, reg.describe(n)) for n in reg.names()]


def run(args: argparse.Namespace) -> int:
    entries = _entries(args.what)
    width = max(len(name) for name, _ in entries)
    for name, text in entries:
        print(f"{name:<{width}}  {text}")
    return 0
