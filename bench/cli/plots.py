"""`bench plots`: the figures of a results folder."""
from __future__ import annotations

import argparse
import sys

from bench.cli.args import add_results_args, non_empty
from bench.core.errors import unknown


def add_to(sub: argparse._SubParsersAction) -> None:
    plots = sub.add_parser("plots", help="figures (accuracy vs noise, heatmap, CD diagram, cost, curves) from a "
                                         "results folder")
    add_results_args(plots)
    plots.add_argument("--format", default="png", help="png or pdf")
    plots.add_argument("--metric", default="last",
                       help="last, best (test-selected), last5 or selected (validation-selected): heatmap, CD "
                            "diagram, accuracy vs time")
    plots.add_argument("--cell", type=non_empty,
                       help="the cell of the per-cell figures, DATASET:RHO:NOISE:RATE or DATASET:RHO:clean "
                            "(default: the cell with the most finished runs)")
    plots.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from analysis.plots import FORMATS, make_plots
    from analysis.results import METRICS, load_results, parse_cell

    if args.format not in FORMATS:
        raise unknown("--format", args.format, FORMATS)
    if args.metric not in METRICS:
        raise unknown("--metric", args.metric, METRICS)
    cell = parse_cell(args.cell) if args.cell else None
    results = load_results(args.results, preset=args.preset)
    report = make_plots(results, fmt=args.format, metric=args.metric, cell=cell)
    for path in report.paths:
        print(path)
    for kind, why in report.skipped.items():
        print(f"skipped {kind}: {why}", file=sys.stderr)
    return 0
