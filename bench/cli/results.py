"""`bench results repair`: move unusable run records aside and rebuild the tables."""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.core.errors import UsageError


def add_to(sub: argparse._SubParsersAction) -> None:
    res = sub.add_parser("results", help="maintain a results folder")
    res_sub = res.add_subparsers(dest="what", required=True, parser_class=type(res))
    repair = res_sub.add_parser("repair", help="move unusable run records aside and rebuild runs/epochs tables")
    repair.add_argument("--results", "--out", dest="results", required=True,
                        help="a results folder (the --out of a `bench run`), e.g. results/quick")
    repair.set_defaults(handler=run_repair)


def run_repair(args: argparse.Namespace) -> int:
    from bench.grid.lock import ResultsLock
    from bench.grid.store import ResultsStore

    root = Path(args.results)
    if not (root / "runs").is_dir():
        raise UsageError(f"'{root}' has no runs/ folder of run records; pass the --out folder of a `bench run`")
    store = ResultsStore(root)
    with ResultsLock(store.root):
        report = store.repair()
    for item in report["moved"]:
        print(f"moved {item['file']} to {item['moved_to']}: {item['why']}")
    print(f"{report['records']} run records ({report['done']} done, {report['failed']} failed), "
          f"{len(report['moved'])} moved aside, {report['temporary_files_removed']} temporary files removed; "
          f"rebuilt runs.csv/.parquet ({report['records']} rows) and epochs.csv/.parquet ({report['epochs']} rows)")
    if report["moved"]:
        print("runs whose records were moved aside count as not done: re-run the grid command to run them again")
    return 0
