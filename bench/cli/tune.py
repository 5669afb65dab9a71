"""`bench tune`: equal-budget hyperparameter search under Ray Tune, selected on noisy validation data."""
from __future__ import annotations

import argparse

from bench.cli.args import add_exec_args, non_empty, parse_methods, positive_int, seed_int, speed_of
from bench.cli.run import SHORT_RUN_HELP, _launch_options, add_launch_args


def add_to(sub: argparse._SubParsersAction) -> None:
    tune = sub.add_parser(
        "tune", help="tune each method's hyperparameters with the same budget, selected on a noisy validation split",
        description="Trial 0 of each method and cell runs its defaults, trials 1..N-1 points drawn from the search "
                    "space it declares; the choice uses the validation score only (never the test set) and is "
                    "written to <out>/tuning.json for `run grid --hparams-from`. Resumable like `run grid`.")
    tune.add_argument("--preset", type=non_empty, required=True)
    tune.add_argument("--methods", type=parse_methods, help="comma-separated subset (default: the preset's methods)")
    tune.add_argument("--cell", dest="cells", action="append", metavar="DATASET:RHO:NOISE:RATE",
                      help="tune on this cell of the preset only (repeatable; default: every cell)")
    tune.add_argument("--trials", type=positive_int, required=True, help="trials per method and cell (>= 2)")
    tune.add_argument("--epochs", type=positive_int, help="epochs of every trial (default: the preset's)")
    tune.add_argument("--val-fraction", type=float, default=0.1, metavar="F",
                      help="share of each noisy class held out as the validation split (default 0.1)")
    tune.add_argument("--seed", type=seed_int, default=0, help="data, training and search seed (default 0)")
    tune.add_argument("--search", default="random",
                      help="random (Ray Tune's samplers, every point drawn up front; default) or optuna (Ray Tune's "
                           "OptunaSearch: each next point suggested from the finished trials' validation scores)")
    tune.add_argument("--scheduler", default="fifo",
                      help="fifo (every trial runs all epochs) or asha (Ray Tune's ASHA stops trials early on "
                           "their validation score)")
    tune.add_argument("--grace-period", type=positive_int,
                      help="asha: epochs before the first rung (default: just past the latest main-phase start)")
    tune.add_argument("--reduction-factor", type=positive_int, default=3, help="asha: keep 1/F at each rung")
    tune.add_argument("--short-run", action="store_true", help=SHORT_RUN_HELP)
    tune.add_argument("--dry-run", action="store_true", help="print the trials, run nothing")
    add_launch_args(tune)
    add_exec_args(tune)
    tune.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from bench.cli.args import require_device
    from bench.tune.run import TuneRequest, plan_tuning, run_tuning

    request = TuneRequest(
        preset=args.preset, trials=args.trials, methods=args.methods, cells=args.cells, epochs=args.epochs,
        val_fraction=args.val_fraction, seed=args.seed, search=args.search, scheduler=args.scheduler,
        grace_period=args.grace_period, reduction_factor=args.reduction_factor,
        out=Path(args.out) if args.out else None, launcher=args.launcher, options=_launch_options(args),
        speed=speed_of(args), short_run=args.short_run,
    )
    if not args.address:
        require_device(args.device)
    trials, settings = plan_tuning(request)  # refuses a bad request before anything is written
    budget = ", ".join(f"{k} {v}" for k, v in settings.items() if k != "preset")
    print(f"tuning preset {args.preset}: {len(trials) if args.search == 'random' else 'adaptive'} trials ({budget})")
    if args.dry_run:
        if args.search == "optuna":
            print("  (optuna: trial 0 of each search is shown; later trials are suggested from the finished ones)")
        for cfg in trials:
            print(f"  {cfg.run_id}  trial {cfg.tuning['trial']}  {cfg.label()}  lr={cfg.optim.lr:g} "
                  f"wd={cfg.optim.weight_decay:g} {json.dumps(cfg.hparams, sort_keys=True)}")
        return 0
    outcome, path = run_tuning(request)
    chosen = json.loads(path.read_text())["chosen"]
    for c in chosen:
        values = {**c["hparams"], **{k: c[k] for k in ("lr", "weight_decay") if k in c}}
        shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
        print(f"chosen: {c['method']} {c['dataset']}:{c['imbalance']:g}:{c['noise']}:{c['noise_rate']:g} "
              f"trial {c['trial']} (validation {c['selected_val']}): {shown}")
    print(f"choices: {path} (apply with `python -m bench run grid --preset {args.preset} --hparams-from {path}`); "
          f"report: `python -m bench table --layout tuning --results {path.parent}`")
    return 1 if outcome.failed else 0
