"""`bench run grid` and `bench run one`."""
from __future__ import annotations

import argparse

from bench.cli.args import (
    absolute,
    add_exec_args,
    add_pretrained_arg,
    add_protocol_args,
    data_spec,
    non_empty,
    non_negative_float,
    non_negative_int,
    parse_hparams,
    parse_methods,
    parse_seeds,
    positive_float,
    positive_int,
    require_device,
    seed_int,
    speed_of,
    val_fraction_float,
)


def add_to(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run a grid or a single configuration")
    run_sub = run.add_subparsers(dest="what", required=True, parser_class=type(run))
    _add_grid(run_sub)
    _add_one(run_sub)


def _add_grid(run_sub: argparse._SubParsersAction) -> None:
    grid = run_sub.add_parser("grid", help="run a preset grid (skips runs already done in --out)")
    grid.add_argument("--preset", type=non_empty, default="default",
                      help="a preset (`bench ls presets`; default: default, the first run, about 1.5 min on 2 cores)")
    grid.add_argument("--methods", type=parse_methods, help="comma-separated subset, e.g. ce,dal")
    grid.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2 (data seed = train seed)")
    grid.add_argument("--epochs", type=positive_int)
    add_launch_args(grid)
    grid.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    grid.add_argument("--short-run", action="store_true", help=SHORT_RUN_HELP)
    grid.add_argument("--val-fraction", type=val_fraction_float, metavar="F",
                      help="hold out this share of each noisy class as a validation split (noisy labels, never "
                           "trained on); runs record the 'selected' accuracy (default: none, as the papers)")
    grid.add_argument("--cell", dest="cells", action="append", metavar="DATASET:RHO:NOISE:RATE",
                      help="only this cell of the preset (repeatable; default: every cell)")
    grid.add_argument("--hparams-from", type=non_empty, metavar="FILE",
                      help="a tuning.json written by `bench tune`: every run takes its method's chosen "
                           "hyperparameters on its cell (run ids change with them)")
    add_exec_args(grid)
    grid.set_defaults(handler=run_grid)


SHORT_RUN_HELP = ("shorten each method's warm-up so that a run of a few epochs reaches its main phase "
                  "(the overrides are printed and recorded in the run's hyperparameters)")


def _print_short_run(methods: list[str]) -> None:
    from bench.grid.presets import short_run_overrides

    for method, overrides in short_run_overrides(methods).items():
        print(f"short run: {method} " + " ".join(f"{k}={v}" for k, v in overrides.items()))


def _add_one(run_sub: argparse._SubParsersAction) -> None:
    one = run_sub.add_parser("one", help="run one configuration in the foreground")
    one.add_argument("--method", type=non_empty, required=True)
    add_protocol_args(one)
    one.add_argument("--backbone", type=non_empty)
    add_pretrained_arg(one)
    one.add_argument("--seed", type=seed_int, default=0)
    one.add_argument("--data-seed", type=seed_int, help="default: --seed")
    one.add_argument("--epochs", type=positive_int)
    one.add_argument("--batch-size", type=positive_int)
    one.add_argument("--lr", type=positive_float)
    one.add_argument("--hp", action="append", default=[], help="method hyperparameter KEY=VALUE")
    one.add_argument("--short-run", action="store_true", help=SHORT_RUN_HELP)
    add_exec_args(one)
    one.set_defaults(handler=run_one)


def add_launch_args(p: argparse.ArgumentParser) -> None:
    """How trials are launched: Ray (local or remote cluster) or serially, resources, retries, trackers."""
    p.add_argument("--launcher", choices=("ray", "local"), default="ray")
    p.add_argument("--cpus-per-trial", type=positive_float, default=1.0,
                   help="CPUs of each trial (at most the CPUs of this machine without --address)")
    p.add_argument("--gpus-per-trial", type=non_negative_float, default=0.0,
                   help="GPUs of each trial, fractions share one (at most the GPUs of this machine "
                        "without --address)")
    p.add_argument("--address", type=non_empty, help="Ray cluster address (default: start a local cluster)")
    p.add_argument("--checkpoint-every", type=positive_int, default=10, help="epochs between checkpoints")
    p.add_argument("--max-failures", type=non_negative_int, default=2,
                   help="Ray: times a trial whose worker died is retried (it resumes from its checkpoint)")
    p.add_argument("--verbose", action="store_true", help="Ray: show Ray's banner and Tune's own progress tables")
    p.add_argument("--logger", dest="loggers", action="append", default=[], metavar="NAME",
                   help="Ray: also log every epoch to tensorboard (<out>/tensorboard), mlflow (<out>/mlruns "
                        "or $MLFLOW_TRACKING_URI) or wandb; repeatable; off by default")


def _launch_options(args: argparse.Namespace):
    """The launch options the subcommand has flags for (the others keep their defaults)."""
    from dataclasses import fields

    from bench.grid.launchers import LaunchOptions

    given = {f.name: getattr(args, f.name) for f in fields(LaunchOptions) if hasattr(args, f.name)}
    if "loggers" in given:
        given["loggers"] = tuple(given["loggers"])
        if given["loggers"] and getattr(args, "launcher", "local") != "ray":
            from bench.core.errors import UsageError

            raise UsageError("--logger feeds Ray Tune's callbacks; use --launcher ray or drop --logger")
    return LaunchOptions(**{**given, "data_root": absolute(args.data_root)})


def run_grid(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.grid import run
    from bench.grid.presets import PRESETS, describe_recipe

    request = run.GridRequest(
        preset=args.preset, methods=args.methods, seeds=parse_seeds(args.seeds) if args.seeds is not None else None,
        epochs=args.epochs, speed=speed_of(args), out=Path(args.out) if args.out else None, launcher=args.launcher,
        options=_launch_options(args), short_run=args.short_run, val_fraction=args.val_fraction,
        adjust=_chosen_hparams(args.hparams_from) if args.hparams_from else None, cells=args.cells,
    )
    if not args.address:  # the GPUs of a remote cluster are its own
        require_device(args.device)
    planned = run.planned_runs(request)  # refuses a bad request before anything is printed or written
    if request.short_run or PRESETS.get(request.preset).short_run:
        _print_short_run([cfg.method for cfg in planned])
    if args.dry_run:
        for cfg in run.plan_grid(request):
            print(f"  {cfg.run_id}  {cfg.label()}\n      {describe_recipe(cfg)}")
        return 0
    outcome = run.run_grid(request)
    if outcome.ran:
        print(f"results: {outcome.store.root / 'runs.csv'} ({outcome.failed} failed)")
    _print_comparison(outcome.store.root, request.preset, planned)
    return 1 if outcome.failed else 0


def _print_comparison(root, preset: str, planned: list) -> None:
    """The grid's comparison table (grid layout, Last, n per cell; † where a cell has >= 3 seeds and the primary
    test finds a difference from the baseline), then where the full analysis is."""
    import dataclasses
    import sys

    from analysis.results import load_results
    from analysis.tables import build_table, render
    from bench.core.errors import UsageError

    try:
        results = load_results(root, preset=preset)
    except UsageError as exc:
        print(f"bench: no comparison table ({exc})", file=sys.stderr)
        return
    ids = {cfg.run_id for cfg in planned}
    runs = results.runs[results.runs["run_id"].isin(ids)].reset_index(drop=True)
    if runs.empty:
        return
    epochs = results.epochs[results.epochs["run_id"].isin(ids)].reset_index(drop=True)
    table = build_table(dataclasses.replace(results, runs=runs, epochs=epochs), "grid", metric="last")
    print("\n" + render(table, "md"), end="")
    print(f"\nfull tables, statistics and plots: python -m bench table|stats|plots --results {root}")


def _chosen_hparams(path: str):
    """The planned runs' adjustment that gives each its method's chosen hyperparameters from a tuning.json."""
    from functools import partial

    from bench.tune.choices import apply_choices, load_choices

    return partial(apply_choices, choices=load_choices(path), source=path)


def run_one(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.grid import run

    request = run.OneRequest(
        method=args.method, data=data_spec(args, args.seed if args.data_seed is None else args.data_seed),
        seed=args.seed, backbone=args.backbone, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        hparams=parse_hparams(args.hp), speed=speed_of(args), out=Path(args.out) if args.out else None,
        options=_launch_options(args), short_run=args.short_run, pretrained=args.pretrained,
    )
    require_device(args.device)
    cfg = run.plan_one(request)  # refuses a bad request before anything is printed
    _check_data_fits(cfg, args)
    if args.short_run:
        _print_short_run([args.method])
    cfg, outcome = run.run_one(request)
    if not outcome.ran:
        print(f"run {cfg.run_id} is already done in {outcome.store.root}; nothing to do")
    _print_record(outcome.store.records_dir / f"{cfg.run_id}.json")
    return 1 if outcome.failed else 0


def _print_record(path) -> None:
    """A stored run in one line: its accuracies and time, or why it failed, and where its record is."""
    import json

    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    summary = record.get("summary", {})
    if record.get("status") != "done":
        what = f"{record.get('status')}: {record.get('error', '')}"
    else:
        what = f"last {summary['last_acc']:.2f}% best (test-selected) {summary['best_acc']:.2f}%"
        if summary.get("selected_on"):
            what += f" selected {summary['selected_acc']:.2f}%"
        what += f" in {summary.get('sec_total', float('nan')):.1f} s"
    print(f"run {record['run_id']}: {what}; record: {path}")


def _check_data_fits(cfg, args: argparse.Namespace) -> None:
    """Build the run's data once, as `data describe` does, so that a protocol the dataset cannot fill (a class
    left without training images by --imbalance or --meta-per-class) is refused before the results folder is
    created: the check of a spec's values (`DataSpec.validate`, all that planning does) cannot see class sizes,
    and the run itself would only record the error as a failed run. Base data that cannot be read now is left
    to the launch, which reports missing files before any run."""
    from bench.core.errors import UsageError
    from noisytail_datasets import build_data, load_base

    root = absolute(args.data_root)
    try:
        load_base(cfg.data.dataset, data_root=root, download=False)
    except UsageError:
        return
    build_data(cfg.data, device="cpu", data_root=root, download=False)
