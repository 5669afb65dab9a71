"""Running a grid or one run, as `bench run` does: plan, skip what is done, lock the results
folder, check the data, launch, and leave the store's tables complete.

The command line is a thin layer over `plan_grid`, `run_grid` and `run_one`; `bench perf
--launcher` calls `run_grid` with hooks to time the same work.

SIGINT or SIGTERM during a launch raises `Interrupted` (from `bench.grid.launchers`) with the grid's
runs done and remaining counted from the store; the command line turns it into exit code 130 / 143.
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.core.errors import UsageError
from bench.grid.launchers import LAUNCHERS, Interrupted, InterruptGuard, LaunchHooks, LaunchOptions
from bench.grid.lock import ResultsLock
from bench.grid.presets import DEFAULT_RECIPES, Recipe, expand, make_run, select_cells
from bench.grid.schema import FINAL_STATUSES
from bench.grid.store import ResultsStore
from bench.nn.backbones import BACKBONES
from bench.nn.speed import SpeedSpec
from bench.train.config import RunConfig
from methods import METHODS
from noisytail_datasets import DATASETS, DataSpec, load_base


@dataclass
class GridRequest:
    """What `bench run grid` was asked to do."""

    preset: str = "default"
    methods: Sequence[str] | None = None
    seeds: Sequence[int] | None = None
    epochs: int | None = None
    speed: SpeedSpec = SpeedSpec()
    out: Path | None = None  # default: results/<preset>
    launcher: str = "ray"
    options: LaunchOptions = field(default_factory=LaunchOptions)
    #: apply each method's short-run overrides (its warm-up shortened to reach the main phase)
    short_run: bool = False
    #: hold out this share of each noisy class as a validation split (None: the preset's protocol, none)
    val_fraction: float | None = None
    #: a last change to the planned runs (e.g. `bench.tune.choices.apply_choices`: the hyperparameters a
    #: search chose, given by `run grid --hparams-from`); it must check what it changes
    adjust: Callable[[list[RunConfig]], list[RunConfig]] | None = None
    #: only these cells of the preset ("DATASET:RHO:NOISE:RATE"; None: all)
    cells: Sequence[str] | None = None


def results_store(out: Path | str | None, default: str) -> ResultsStore:
    """The store at `out`, or at results/<default>."""
    return ResultsStore(Path(out) if out else Path("results") / default)


def planned_runs(request: GridRequest) -> list[RunConfig]:
    """The preset's distinct runs, every value checked (nothing is written)."""
    if request.launcher not in LAUNCHERS:
        raise UsageError(f"unknown launcher '{request.launcher}'; choose one of: {', '.join(LAUNCHERS)}")
    request.options.validate()
    runs = expand(request.preset, methods=request.methods, seeds=request.seeds, epochs=request.epochs,
                  speed=request.speed, short_run=request.short_run)
    runs = select_cells(runs, request.cells, request.preset)
    if request.val_fraction is not None:
        runs = [cfg.with_(data=dataclasses.replace(cfg.data, val_fraction=request.val_fraction)) for cfg in runs]
        if runs:  # the other fields were checked by `expand`; the fraction is the same in every run
            runs[0].data.validate()
    if request.adjust is not None:
        runs = request.adjust(runs)
    return list({cfg.run_id: cfg for cfg in runs}.values())


def plan_grid(request: GridRequest) -> list[RunConfig]:
    """The runs of a request not done yet (a dry run: nothing is written)."""
    return pending_runs(results_store(request.out, request.preset), planned_runs(request), request.preset)


def pending_runs(store: ResultsStore, runs: list[RunConfig], preset: str) -> list[RunConfig]:
    """The runs not yet done in the store; says what it found, and warns of unusable records."""
    records, bad = store.scan()
    done = {r["run_id"] for r in records if r["status"] in FINAL_STATUSES}
    pending = [cfg for cfg in runs if cfg.run_id not in done]
    print(f"preset {preset}: {len(runs)} runs, {len(pending)} to do, "
          f"{len(runs) - len(pending)} already done in {store.root}")
    if bad:
        names = ", ".join(path.name for path, _ in bad[:3]) + (" …" if len(bad) > 3 else "")
        print(f"bench: warning: {len(bad)} unusable run record(s) in {store.records_dir} ({names}); their runs "
              f"count as not done; `python -m bench results repair --results {store.root}` moves them aside",
              file=sys.stderr)
    return pending


@dataclass
class Outcome:
    """What a launch did: the store, how many runs it ran, and how many of them failed."""

    store: ResultsStore
    ran: int
    failed: int


def run_grid(request: GridRequest, hooks: LaunchHooks | None = None,
             on_stored: Callable[[dict[str, Any], float], None] | None = None) -> Outcome:
    """Run what is not done yet in the store.

    `on_stored(record, seconds)` is called after each record is stored (a store listener)."""
    runs = planned_runs(request)
    store = results_store(request.out, request.preset)
    check_data_of_pending(store, runs, request.options)
    store.ensure_writable()
    with ResultsLock(store.root):
        pending = pending_runs(store, runs, request.preset)
        if on_stored is not None:
            store.listeners.append(on_stored)
        with counted_on_interrupt(store, runs):
            return launch(pending, store, request.launcher, request.options, hooks)


@contextlib.contextmanager
def counted_on_interrupt(store: ResultsStore, runs: list[RunConfig]) -> Iterator[None]:
    """An `Interrupted` leaving the block says how many of `runs` are done in the store and how many
    are not (failed runs count as not done: the next launch runs them again)."""
    try:
        yield
    except Interrupted as exc:
        done = store.completed_ids()
        exc.finished = sum(cfg.run_id in done for cfg in runs)
        exc.remaining = len(runs) - exc.finished
        raise


def launch(pending: list[RunConfig], store: ResultsStore, launcher: str, options: LaunchOptions,
           hooks: LaunchHooks | None = None) -> Outcome:
    """Run `pending` with `launcher` and leave the store's tables complete (the caller holds the store's
    lock and has checked the data: `check_data_of_pending`)."""
    if not pending:
        return Outcome(store, 0, 0)
    with InterruptGuard():  # a signal outside the launcher's own guard stops the command the same way
        try:
            failed = LAUNCHERS[launcher](pending, store, options, hooks)
        finally:
            store.finalize()
    return Outcome(store, len(pending), failed)


def check_data_of_pending(store: ResultsStore, runs: list[RunConfig], options: LaunchOptions) -> None:
    """Load the base datasets of the runs not done yet (reading the store, writing nothing), so that
    missing files stop the command with one line before the results folder is even created."""
    done = store.completed_ids()
    with InterruptGuard():  # a signal while the data are checked stops the command the same way
        check_data({cfg.data.dataset for cfg in runs if cfg.run_id not in done}, options)


def check_data(datasets: set[str], options: LaunchOptions) -> None:
    """Load each base dataset once (the loaders cache them), so that missing files fail clearly before any run."""
    for dataset in sorted(datasets):
        load_base(dataset, data_root=options.data_root, download=options.download)


@dataclass
class OneRequest:
    """What `bench run one` was asked to do: a method on one data protocol, with the dataset's
    default recipe unless told otherwise."""

    method: str
    data: DataSpec
    seed: int = 0
    backbone: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    hparams: dict[str, Any] = field(default_factory=dict)
    speed: SpeedSpec = SpeedSpec()
    out: Path | None = None  # default: results/one
    options: LaunchOptions = field(default_factory=LaunchOptions)
    #: apply the method's short-run overrides first (the user's `hparams` still win)
    short_run: bool = False
    #: pretrained weights of the backbone (None: the dataset recipe's, "" none)
    pretrained: str | None = None


def plan_one(request: OneRequest) -> RunConfig:
    """The fully resolved run (the method's defaults on this dataset, then `hparams`), checked."""
    DATASETS.get(request.data.dataset)
    if request.data.dataset not in DEFAULT_RECIPES:
        raise UsageError(f"dataset '{request.data.dataset}' has no default recipe for `run one`; datasets with one: "
                         f"{', '.join(DEFAULT_RECIPES.names())}")
    base = DEFAULT_RECIPES.get(request.data.dataset)
    optim = base.optim if request.lr is None else dataclasses.replace(base.optim, lr=request.lr)
    recipe = Recipe(backbone=request.backbone or base.backbone,
                    epochs=request.epochs if request.epochs is not None else base.epochs,
                    batch_size=request.batch_size or base.batch_size, optim=optim, schedule=base.schedule,
                    pretrained=base.pretrained if request.pretrained is None else request.pretrained)
    if recipe.epochs < 1 or recipe.batch_size < 1:
        raise UsageError("--epochs and --batch-size must be at least 1")
    BACKBONES.get(recipe.backbone)
    short = METHODS.get(request.method).short_run if request.short_run else {}
    return make_run(request.data, request.method, recipe, request.seed, hparams={**short, **request.hparams},
                    preset="one", speed=request.speed)


def run_one(request: OneRequest) -> tuple[RunConfig, Outcome]:
    """Run one configuration in this process (nothing when it is already done in the store)."""
    cfg = plan_one(request)
    store = results_store(request.out, "one")
    check_data_of_pending(store, [cfg], request.options)
    store.ensure_writable()
    with ResultsLock(store.root):
        pending = [] if cfg.run_id in store.completed_ids() else [cfg]
        with counted_on_interrupt(store, [cfg]):
            return cfg, launch(pending, store, "local", request.options)
