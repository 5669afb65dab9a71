"""`bench report`: a benchmark report of the README (`bench ls reports`), from a grid folder or from its
committed run records."""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.args import non_empty
from bench.core.errors import UsageError


def add_to(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="write a README benchmark report (table, effects, statistics, figures) "
                                           "from a grid folder or from its committed run records")
    report.add_argument("name", type=non_empty, help="the report, e.g. fmnist-n-lt (see `bench ls reports`)")
    source = report.add_mutually_exclusive_group(required=True)
    source.add_argument("--results", type=non_empty, metavar="DIR",
                        help="a grid folder holding the report preset's runs: its records are copied into the "
                             "report's records folder (results/reports/<name>), then the report is written")
    source.add_argument("--from-results", nargs="?", const="", type=str, metavar="DIR",
                        help="rewrite the report from committed records without training (default: the report's "
                             "records folder, results/reports/<name>)")
    report.add_argument("--readme", type=non_empty, default="README.md",
                        help="the file holding the report's section markers (default: README.md)")
    report.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when the README's section differs from the records")
    report.add_argument("--no-figures", action="store_true", help="keep the figures as they are")
    report.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from analysis import report as reports
    from analysis.results import load_results
    from bench.grid.reports import REPORTS

    spec = REPORTS.get(args.name)
    if args.check and args.results is not None:
        raise UsageError("--check compares the README with committed records; use it with --from-results")
    root = Path(".")
    folder = Path(args.from_results) if args.from_results else root / spec.records
    if args.results is not None:
        load_results(args.results, preset=spec.preset)  # the grid folder holds the report's runs
    else:
        reports.load_records(spec, folder)  # the records exist
    readme = Path(args.readme)
    if not readme.is_file():
        raise UsageError(f"no file '{readme}'; run from the repository root or pass --readme")
    text = readme.read_text(encoding="utf-8")
    reports.replace_section(text, spec.name, "")  # the markers exist, or a UsageError before anything is written
    if args.results is not None:
        reports.import_records(spec, args.results, root)
    results, meta = reports.load_records(spec, folder)
    if not args.check and not args.no_figures:
        reports.write_figures(spec, results, root)
    section = reports.render_section(spec, results, meta, root)
    if args.check:
        if reports.current_section(text, spec.name) != section:
            print(f"{readme}: the section of report '{spec.name}' is out of date; rewrite it with "
                  f"`python -m bench report {spec.name} --from-results`")
            return 1
        print(f"{readme}: the section of report '{spec.name}' matches its records")
        return 0
    readme.write_text(reports.replace_section(text, spec.name, section), encoding="utf-8")
    print(f"{readme}: section '{spec.heading}' written from {folder} ({len(results.runs)} runs)"
          + ("" if args.no_figures else f"; figures in {spec.figures}/"))
    return 0
