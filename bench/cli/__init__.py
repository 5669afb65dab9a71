"""Command line: `python -m bench {run grid|run one|ls|data describe|perf|validate}`.

Bad input (unknown names, out-of-range values, missing data, unwritable folders) is reported
as one line on stderr with exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from bench.core.errors import UsageError
from bench.grid.lock import ResultsLock

if TYPE_CHECKING:
    from bench.grid.store import ResultsStore
    from bench.train.config import RunConfig


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line: 'bench: error: …' and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"bench: error: {message} (see '{self.prog} --help')\n")


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(f"malformed --seeds '{text}': expected comma-separated integers such as 0,1,2") from None
    if any(s < 0 for s in seeds):
        raise UsageError(f"malformed --seeds '{text}': seeds must be non-negative integers")
    return seeds


def parse_methods(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def parse_hparams(pairs: list[str]) -> dict[str, Any]:
    """['q_start=0.4', 'name=x'] -> {'q_start': 0.4, 'name': 'x'} (values parsed as JSON when they can be)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"malformed --hp '{pair}': expected KEY=VALUE, e.g. --hp q_start=0.4")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _add_exec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="results folder (default: results/<preset> or results/one)")
    _add_speed_args(p)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--data-root", help="folder with the dataset files (else $BENCH_DATA, system paths)")
    p.add_argument("--download", action="store_true", help="download missing datasets with torchvision")


def _add_speed_args(p: argparse.ArgumentParser) -> None:
    speed = p.add_argument_group("speed (recorded in each run's config; see README 'GPU fast path')")
    speed.add_argument("--amp", default="auto", help="auto (bf16 autocast of plain steps on CUDA), bf16 or off")
    speed.add_argument("--channels-last", default="auto", help="auto (on CUDA), on or off")
    speed.add_argument("--compile", action="store_true", help="torch.compile the backbone (eager fallback)")
    speed.add_argument("--deterministic", action="store_true",
                       help="every speed flag off, deterministic kernels, no cuDNN autotuning")


def _add_protocol_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True)
    p.add_argument("--imbalance", type=float, default=1.0, help="rho = n_max / n_min (1: balanced)")
    p.add_argument("--noise", default="none", help="see `bench ls noise`")
    p.add_argument("--noise-rate", type=float, default=0.0)
    p.add_argument("--order", default="lt-noise", help="lt-noise or meta-noise-lt")
    p.add_argument("--meta-per-class", type=int, default=10)


def _data_spec(args: argparse.Namespace, data_seed: int):
    from noisytail_datasets import DataSpec

    return DataSpec(
        dataset=args.dataset, imbalance=args.imbalance, noise=args.noise, noise_rate=args.noise_rate,
        order=args.order, meta_per_class=args.meta_per_class, data_seed=data_seed,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bench", description="noisytail-bench: label noise x class imbalance benchmark")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a grid or a single configuration")
    run_sub = run.add_subparsers(dest="what", required=True, parser_class=_Parser)
    grid = run_sub.add_parser("grid", help="run a preset grid (skips runs already done in --out)")
    grid.add_argument("--preset", default="quick")
    grid.add_argument("--methods", type=parse_methods, help="comma-separated subset, e.g. ce,dal")
    grid.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2 (data seed = train seed)")
    grid.add_argument("--epochs", type=int)
    grid.add_argument("--launcher", choices=("ray", "local"), default="ray")
    grid.add_argument("--cpus-per-trial", type=float, default=1.0)
    grid.add_argument("--gpus-per-trial", type=float, default=0.0)
    grid.add_argument("--address", help="Ray cluster address (default: start a local cluster)")
    grid.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    grid.add_argument("--checkpoint-every", type=int, default=10, help="epochs between checkpoints")
    grid.add_argument("--max-failures", type=int, default=2,
                      help="Ray: times a trial whose worker died is retried (it resumes from its checkpoint)")
    _add_exec_args(grid)

    one = run_sub.add_parser("one", help="run one configuration in the foreground")
    one.add_argument("--method", required=True)
    _add_protocol_args(one)
    one.add_argument("--backbone")
    one.add_argument("--seed", type=int, default=0)
    one.add_argument("--data-seed", type=int, help="default: --seed")
    one.add_argument("--epochs", type=int)
    one.add_argument("--batch-size", type=int)
    one.add_argument("--lr", type=float)
    one.add_argument("--hp", action="append", default=[], help="method hyperparameter KEY=VALUE")
    _add_exec_args(one)

    ls = sub.add_parser("ls", help="list registered names")
    ls.add_argument("what", choices=("methods", "datasets", "presets", "backbones", "noise", "layouts"))

    data = sub.add_parser("data", help="inspect the data protocols")
    data_sub = data.add_subparsers(dest="what", required=True, parser_class=_Parser)
    desc = data_sub.add_parser("describe", help="sizes, class counts and realised noise of a protocol")
    _add_protocol_args(desc)
    desc.add_argument("--data-seed", type=int, default=0)
    desc.add_argument("--json", action="store_true")
    desc.add_argument("--data-root")
    desc.add_argument("--download", action="store_true")

    perf = sub.add_parser("perf", help="time each method's training step side by side")
    perf.add_argument("--backbone", help="default: resnet32 (with --epoch: the dataset's recipe backbone)")
    perf.add_argument("--batch", type=int, default=128)
    perf.add_argument("--device", default="cpu")
    perf.add_argument("--methods", type=parse_methods)
    perf.add_argument("--iters", type=int, default=20, help="timed iterations per method")
    perf.add_argument("--warmup", type=int, default=3)
    perf.add_argument("--json", action="store_true")
    perf.add_argument("--epoch", action="store_true",
                      help="time one post-warm-up DivideMix epoch on real data against a CE epoch and its cost model")
    perf.add_argument("--method", default="dividemix", help="with --epoch: a DivideMix-family method")
    perf.add_argument("--dataset", default="fashion-mnist", help="with --epoch")
    perf.add_argument("--noise", default="sym", help="with --epoch")
    perf.add_argument("--noise-rate", type=float, default=0.4, help="with --epoch")
    perf.add_argument("--imbalance", type=float, default=1.0, help="with --epoch")
    perf.add_argument("--warmup-epochs", type=int, default=1, help="with --epoch: warm-up epochs before the timed one")
    perf.add_argument("--data-root", help="with --epoch")
    perf.add_argument("--launcher", choices=("ray", "local", "both"),
                      help="time `run grid --preset P` end to end under this launcher (both: Ray's overhead per trial)")
    perf.add_argument("--preset", default="quick", help="with --launcher: the grid to run (--methods narrows it)")
    perf.add_argument("--throughput", action="store_true",
                      help="epochs through the engine on random-cifar (solo, per method) and packed CE trials")
    perf.add_argument("--epochs", type=int, default=3, help="with --throughput: epochs per run (the last is timed)")
    perf.add_argument("--packs", default="1,2,4,8", help="with --throughput: numbers of CE trials packed at once")
    perf.add_argument("--json-out", help="with --throughput: also write the result (and this command) as JSON here, "
                                         "e.g. results/perf/h100.json")
    _add_speed_args(perf)

    table = sub.add_parser("table", help="a comparison table (Markdown, LaTeX, CSV) from a results folder")
    _add_results_args(table)
    table.add_argument("--layout", help="grid or a paper's table, e.g. dl-table2 (default: the layout of the "
                                        "results' preset, else grid); see `bench ls layouts`")
    table.add_argument("--format", default="md", help="what to print: md, latex or csv (all three are written)")
    table.add_argument("--metric", help="last, best or last5 (default: the layout's metrics)")
    table.add_argument("--reference", action="store_true", help="add the published numbers and ours − paper")

    stats = sub.add_parser("stats", help="significance tests within cells (over seeds) and across cells")
    _add_results_args(stats)
    stats.add_argument("--metric", default="last", help="last, best or last5")
    stats.add_argument("--reference-method", default="ce", help="the method every other is tested against in a cell")
    stats.add_argument("--alpha", type=float, default=0.05, help="family-wise error rate (Holm) and CI level 1 - alpha")

    plots = sub.add_parser("plots", help="figures (accuracy vs noise, heatmap, CD diagram, cost, curves) from a results folder")
    _add_results_args(plots)
    plots.add_argument("--format", default="png", help="png or pdf")
    plots.add_argument("--metric", default="last", help="last, best or last5 (heatmap, CD diagram, accuracy vs time)")
    plots.add_argument("--cell", help="the cell of the per-cell figures, DATASET:RHO:NOISE:RATE or DATASET:RHO:clean "
                                      "(default: the cell with the most finished runs)")

    res = sub.add_parser("results", help="maintain a results folder")
    res_sub = res.add_subparsers(dest="what", required=True, parser_class=_Parser)
    repair = res_sub.add_parser("repair", help="move unusable run records aside and rebuild runs/epochs tables")
    repair.add_argument("--results", required=True, help="a results folder, e.g. results/quick")

    val = sub.add_parser("validate", help="resolve every run of the presets without training")
    val.add_argument("--preset", help="default: all presets")
    return parser


def _add_results_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", required=True, help="a results folder, e.g. results/quick")
    p.add_argument("--preset", help="only the runs of this preset (when a folder holds several)")


def _speed(args: argparse.Namespace):
    from bench.nn.speed import SpeedSpec

    return SpeedSpec(amp=args.amp, channels_last=args.channels_last, compile=args.compile,
                     deterministic=args.deterministic)


def _store_for(out: str | None, default: str):
    from bench.grid.store import ResultsStore

    return ResultsStore(Path(out) if out else Path("results") / default)


def cmd_run_grid(args: argparse.Namespace) -> int:
    from bench.grid.launchers import LAUNCHERS, LaunchOptions
    from bench.grid.presets import describe_recipe, expand
    from noisytail_datasets import load_base

    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    if args.cpus_per_trial <= 0 or args.gpus_per_trial < 0:
        raise UsageError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    if args.max_failures < 0:
        raise UsageError("--max-failures must be >= 0")
    runs = expand(args.preset, methods=args.methods, seeds=seeds, epochs=args.epochs, speed=_speed(args))
    store = _store_for(args.out, args.preset)
    unique = list({cfg.run_id: cfg for cfg in runs}.values())
    if args.dry_run:
        pending = _pending(store, unique, args.preset)
        for cfg in pending:
            print(f"  {cfg.run_id}  {cfg.label()}\n      {describe_recipe(cfg)}")
        return 0
    store.ensure_writable()
    with ResultsLock(store.root):
        pending = _pending(store, unique, args.preset)
        if not pending:
            return 0
        for dataset in sorted({cfg.data.dataset for cfg in pending}):
            load_base(dataset, data_root=args.data_root, download=args.download)  # fails early, clearly
        opts = LaunchOptions(
            cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial, address=args.address,
            device=args.device, data_root=_abs(args.data_root), download=args.download,
            checkpoint_every=args.checkpoint_every, max_failures=args.max_failures,
        )
        failed = LAUNCHERS[args.launcher](pending, store, opts)
    print(f"results: {store.root / 'runs.csv'} ({failed} failed)")
    return 1 if failed else 0


def _pending(store: ResultsStore, unique: list[RunConfig], preset: str) -> list[RunConfig]:
    """The runs not yet done in the store; says what it found, and warns of unusable records."""
    records, bad = store.scan()
    done = {r["run_id"] for r in records if r["status"] == "done"}
    pending = [cfg for cfg in unique if cfg.run_id not in done]
    print(f"preset {preset}: {len(unique)} runs, {len(pending)} to do, "
          f"{len(unique) - len(pending)} already done in {store.root}")
    if bad:
        names = ", ".join(path.name for path, _ in bad[:3]) + (" …" if len(bad) > 3 else "")
        print(f"bench: warning: {len(bad)} unusable run record(s) in {store.records_dir} ({names}); their runs "
              f"count as not done; `python -m bench results repair --results {store.root}` moves them aside",
              file=sys.stderr)
    return pending


def _abs(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


def cmd_run_one(args: argparse.Namespace) -> int:
    from bench.grid.launchers import LaunchOptions, launch_local
    from bench.grid.presets import DEFAULT_RECIPES, Recipe, make_run
    from noisytail_datasets import DATASETS, load_base

    DATASETS.get(args.dataset)
    base = DEFAULT_RECIPES[args.dataset]
    recipe = Recipe(
        backbone=args.backbone or base.backbone,
        epochs=args.epochs if args.epochs is not None else base.epochs,
        batch_size=args.batch_size or base.batch_size,
        optim=base.optim if args.lr is None else type(base.optim)(**{**base.optim.__dict__, "lr": args.lr}),
        schedule=base.schedule,
    )
    if recipe.epochs < 1 or recipe.batch_size < 1:
        raise UsageError("--epochs and --batch-size must be at least 1")
    from bench.nn.backbones import BACKBONES

    BACKBONES.get(recipe.backbone)
    data = _data_spec(args, args.seed if args.data_seed is None else args.data_seed)
    cfg = make_run(data, args.method, recipe, args.seed, hparams=parse_hparams(args.hp), preset="one",
                   speed=_speed(args))
    store = _store_for(args.out, "one")
    store.ensure_writable()
    with ResultsLock(store.root):
        if cfg.run_id in store.completed_ids():
            print(f"run {cfg.run_id} is already done in {store.root}; nothing to do")
            return 0
        load_base(args.dataset, data_root=args.data_root, download=args.download)
        opts = LaunchOptions(device=args.device, data_root=_abs(args.data_root), download=args.download)
        failed = launch_local([cfg], store, opts)
    return 1 if failed else 0


def cmd_ls(args: argparse.Namespace) -> int:
    if args.what == "methods":
        from methods import METHODS as reg
    elif args.what == "datasets":
        from noisytail_datasets import DATASETS as reg
    elif args.what == "presets":
        from bench.grid.presets import PRESETS as reg
    elif args.what == "backbones":
        from bench.nn.backbones import BACKBONES as reg
    elif args.what == "layouts":
        from analysis.layouts import LAYOUTS

        print(f"{'grid':<13}  every method and cell of the results, grouped by dataset and rho")
        for name in LAYOUTS.names():
            print(f"{name:<13}  {LAYOUTS.get(name).title}")
        return 0
    else:
        from noisytail_datasets import NOISE_MODELS as reg
    width = max(len(n) for n in reg.names())
    for name in reg.names():
        print(f"{name:<{width}}  {reg.describe(name)}")
    return 0


def cmd_data_describe(args: argparse.Namespace) -> int:
    from noisytail_datasets import build_data, describe

    spec = _data_spec(args, args.data_seed)
    spec.validate()
    info = describe(build_data(spec, device="cpu", data_root=args.data_root, download=args.download))
    if args.json:
        print(json.dumps(info))
        return 0
    for key, value in info.items():
        if key == "transition_matrix":
            print("transition_matrix (row: clean class, column: noisy label):")
            for row in value:
                print("  " + " ".join(f"{v:.3f}" for v in row))
        elif key == "noise_rate_realized":
            print(f"{key}: {value:.4f}")
        else:
            print(f"{key}: {value}")
    return 0


def cmd_perf(args: argparse.Namespace) -> int:
    from bench.perf.step import format_table, run_perf

    if args.launcher:
        from bench.perf.launch import LAUNCHERS, format_launch_perf, run_launch_perf

        chosen = LAUNCHERS if args.launcher == "both" else (args.launcher,)
        result = run_launch_perf(preset=args.preset, launchers=chosen, methods=args.methods, device=args.device)
        print(json.dumps(result) if args.json else format_launch_perf(result))
        return 0
    if args.throughput:
        return _perf_throughput(args)
    if args.epoch:
        from bench.perf.epoch import format_epoch_perf, run_epoch_perf

        result = run_epoch_perf(
            method=args.method, dataset=args.dataset, backbone=args.backbone,
            imbalance=args.imbalance, noise=args.noise, noise_rate=args.noise_rate,
            warmup_epochs=args.warmup_epochs, device=args.device, data_root=args.data_root,
        )
        print(json.dumps(result) if args.json else format_epoch_perf(result))
        return 0
    rows = run_perf(backbone=args.backbone or "resnet32", batch=args.batch, device=args.device,
                    methods=args.methods, iters=args.iters, warmup=args.warmup)
    print(json.dumps(rows) if args.json else format_table(rows))
    return 0


def _perf_throughput(args: argparse.Namespace) -> int:
    from bench.perf.throughput import format_device_perf, run_device_perf

    try:
        packs = tuple(int(p) for p in args.packs.split(","))
    except ValueError:
        raise UsageError(f"malformed --packs '{args.packs}': expected integers such as 1,2,4,8") from None
    result = run_device_perf(args.methods, backbone=args.backbone or "resnet32", batch=args.batch,
                             device=args.device, epochs=args.epochs, packs=packs, speed=_speed(args),
                             imbalance=args.imbalance)
    result["command"] = "python -m bench " + " ".join(sys.argv[1:])
    if args.json_out:
        from bench.train.checkpoint import atomic_write_json

        atomic_write_json(Path(args.json_out), result)
    print(json.dumps(result) if args.json else format_device_perf(result))
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from analysis.layouts import default_layout
    from analysis.results import load_results
    from analysis.tables import FORMATS, build_table, render, write_table

    if args.format not in FORMATS:
        raise UsageError(f"unknown --format '{args.format}'; choose one of: {', '.join(FORMATS)}")
    results = load_results(args.results, preset=args.preset)
    table = build_table(results, args.layout or default_layout(results), metric=args.metric,
                        reference=args.reference)
    paths = write_table(table, results.root / "tables")
    print(render(table, args.format), end="")
    print(f"\nwritten: {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from analysis.results import load_results
    from analysis.stats import write_stats

    results = load_results(args.results, preset=args.preset)
    markdown, paths = write_stats(results, metric=args.metric, reference=args.reference_method, alpha=args.alpha)
    print(markdown, end="")
    print(f"\nwritten: {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return 0


def cmd_plots(args: argparse.Namespace) -> int:
    from analysis.plots import make_plots
    from analysis.results import load_results, parse_cell

    cell = parse_cell(args.cell) if args.cell else None
    results = load_results(args.results, preset=args.preset)
    report = make_plots(results, fmt=args.format, metric=args.metric, cell=cell)
    for path in report.paths:
        print(path)
    for kind, why in report.skipped.items():
        print(f"skipped {kind}: {why}", file=sys.stderr)
    return 0


def cmd_results_repair(args: argparse.Namespace) -> int:
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


def cmd_validate(args: argparse.Namespace) -> int:
    from bench.grid.presets import PRESETS, expand

    for name in [args.preset] if args.preset else PRESETS.names():
        runs = expand(name)
        ids = {cfg.run_id for cfg in runs}
        if len(ids) != len(runs):
            raise UsageError(f"preset '{name}' has {len(runs) - len(ids)} duplicate runs")
        print(f"{name}: {len(runs)} runs resolve")
    return 0


COMMANDS = {
    ("run", "grid"): cmd_run_grid,
    ("run", "one"): cmd_run_one,
    ("ls", None): cmd_ls,
    ("data", "describe"): cmd_data_describe,
    ("perf", None): cmd_perf,
    ("validate", None): cmd_validate,
    ("table", None): cmd_table,
    ("plots", None): cmd_plots,
    ("stats", None): cmd_stats,
    ("results", "repair"): cmd_results_repair,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = COMMANDS[(args.command, getattr(args, "what", None) if args.command in ("run", "data", "results") else None)]
    try:
        return handler(args)
    except BrokenPipeError:  # e.g. `bench ... | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit flush
        return 0
    except UsageError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; finished runs are saved, re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
