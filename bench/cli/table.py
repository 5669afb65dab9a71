"""`bench table`: a comparison table (Markdown, LaTeX, CSV) from a results folder."""
from __future__ import annotations

import argparse
import sys

from bench.cli.args import add_results_args, non_empty
from bench.core.errors import UsageError, unknown

#: the layout name of the tuning report (`analysis.tuning`), not a table layout of `analysis.layouts`
TUNING = "tuning"


def add_to(sub: argparse._SubParsersAction) -> None:
    table = sub.add_parser("table", help="a comparison table (Markdown, LaTeX, CSV) from a results folder")
    add_results_args(table)
    table.add_argument("--layout", type=non_empty,
                       help="grid or a paper's table, e.g. dl-table2 (default: the layout of the "
                            "results' preset, else grid); see `bench ls layouts`; `tuning`: the report of a "
                            "`bench tune` folder (defaults against tuned hyperparameters, budget, spread)")
    table.add_argument("--format", default="md", help="what to print: md, latex or csv (all three are written)")
    table.add_argument("--metric",
                       help="last, best (test-selected, optimistic), last5 or selected (noisy-validation-selected); "
                            "default: the layout's metrics")
    table.add_argument("--reference", action="store_true", help="add the published numbers and ours − paper")
    table.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from analysis.layouts import default_layout, layout_names
    from analysis.results import METRICS, load_results
    from analysis.tables import FORMATS, build_table, render, write_table

    if args.format not in FORMATS:
        raise UsageError(f"unknown --format '{args.format}'; choose one of: {', '.join(FORMATS)}")
    if args.layout == TUNING:
        return _run_tuning(args)
    if args.metric is not None and args.metric not in METRICS:
        raise unknown("--metric", args.metric, METRICS)
    if args.layout is not None and args.layout not in layout_names():
        raise unknown("table layout", args.layout, [*layout_names(), TUNING])
    results = load_results(args.results, preset=args.preset)
    table = build_table(results, args.layout or default_layout(results), metric=args.metric,
                        reference=args.reference)
    paths = write_table(table, results.root / "tables")
    print(render(table, args.format), end="")
    print(f"\nwritten: {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return 0


def _run_tuning(args: argparse.Namespace) -> int:
    """`--layout tuning`: the tuning report of a `bench tune` folder, written as tables/tuning.{md,tex,csv}."""
    from analysis.tuning import render, tuning_report, write_tuning

    if args.metric is not None:
        raise UsageError("--metric does not apply to --layout tuning (it reports the test accuracy at the epoch the "
                         "validation score selects); drop --metric")
    if args.reference:
        raise UsageError("--reference does not apply to --layout tuning (a tuning search has no published "
                         "counterpart); drop --reference")
    results, report = tuning_report(args.results, preset=args.preset)
    paths = write_tuning(report, results.root / "tables")
    print(render(report, args.format), end="")
    print(f"\nwritten: {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return 0
