"""`bench table`: a comparison table (Markdown, LaTeX, CSV) from a results folder."""
from __future__ import annotations

import argparse
import sys

from bench.cli.args import add_results_args, non_empty
from bench.core.errors import UsageError, unknown


def add_to(sub: argparse._SubParsersAction) -> None:
    table = sub.add_parser("table", help="a comparison table (Markdown, LaTeX, CSV) from a results folder")
    add_results_args(table)
    table.add_argument("--layout", type=non_empty,
                       help="grid or a paper's table, e.g. dl-table2 (default: the layout of the "
                            "results' preset, else grid); see `bench ls layouts`")
    table.add_argument("--format", default="md", help="what to print: md, latex or csv (all three are written)")
    table.add_argument("--metric", help="last, best or last5 (default: the layout's metrics)")
    table.add_argument("--reference", action="store_true", help="add the published numbers and ours − paper")
    table.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from analysis.layouts import default_layout, layout_names
    from analysis.results import METRICS, load_results
    from analysis.tables import FORMATS, build_table, render, write_table

    if args.format not in FORMATS:
        raise UsageError(f"unknown --format '{args.format}'; choose one of: {', '.join(FORMATS)}")
    if args.metric is not None and args.metric not in METRICS:
        raise unknown("--metric", args.metric, METRICS)
    if args.layout is not None and args.layout not in layout_names():
        raise unknown("table layout", args.layout, layout_names())
    results = load_results(args.results, preset=args.preset)
    table = build_table(results, args.layout or default_layout(results), metric=args.metric,
                        reference=args.reference)
    paths = write_table(table, results.root / "tables")
    print(render(table, args.format), end="")
    print(f"\nwritten: {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return 0
