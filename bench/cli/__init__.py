"""Command line: `python -m bench {run grid|run one|tune|ls|data describe|perf|validate|table|stats|plots|report|
results}`.

One module per subcommand; each adds its parser (`add_to`) and sets the handler it runs. The
command line is a leaf: nothing in the library imports it. Bad input (unknown names,
out-of-range values, missing data, unwritable folders) is reported as one line on stderr with
exit code 2, never a traceback. An interrupted command (SIGINT, or SIGTERM during a launch) says in
one line what is done and how to resume, and exits 130 / 143; it never exits 0.
"""
from __future__ import annotations

import argparse
import os
import sys

from bench.cli import data, ls, perf, plots, report, results, run, stats, table, tune, validate
from bench.cli.args import Parser
from bench.core.errors import UsageError
from bench.grid.launchers import Interrupted

SUBCOMMANDS = (run, tune, ls, data, perf, table, stats, plots, report, results, validate)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="bench", description="noisytail-bench: label noise x class imbalance benchmark")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in SUBCOMMANDS:
        module.add_to(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except BrokenPipeError:  # e.g. `bench ... | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit flush
        return 0
    except UsageError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:  # a launch stopped by SIGINT or SIGTERM (a KeyboardInterrupt: caught first)
        print(exc.summary(), file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bench: interrupted; finished runs are saved, re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
