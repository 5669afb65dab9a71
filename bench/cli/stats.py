"""`bench stats`: significance tests within cells (over seeds) and across cells."""
from __future__ import annotations

import argparse
import sys

from bench.cli.args import add_results_args, non_empty, probability_float
from bench.core.errors import unknown


def add_to(sub: argparse._SubParsersAction) -> None:
    stats = sub.add_parser("stats", help="significance tests within cells (over seeds) and across cells")
    add_results_args(stats)
    stats.add_argument("--metric", default="last",
                       help="last, best (test-selected, optimistic), last5 or selected (noisy-validation-selected)")
    stats.add_argument("--reference-method", type=non_empty,
                       help="the method every other is tested against in a cell "
                            "(default: the baseline method, see `bench ls methods`)")
    stats.add_argument("--alpha", type=probability_float, default=0.05,
                       help="family-wise error rate (Holm) and CI level 1 - alpha")
    stats.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from analysis.results import METRICS, load_results
    from analysis.stats import write_stats

    if args.metric not in METRICS:
        raise unknown("--metric", args.metric, METRICS)
    results = load_results(args.results, preset=args.preset)
    markdown, paths = write_stats(results, metric=args.metric, reference=args.reference_method, alpha=args.alpha)
    print(markdown, end="")
    print(f"\nwritten: {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return 0
