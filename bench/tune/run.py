"""`bench tune`: plan a search per method and cell, run its trials as ordinary runs, choose on validation.

Every method gets the same budget: `trials` runs of the same epochs on the same cells, data and
validation split (the preset's protocol plus `val_fraction`, identical for every method). Trial 0 runs
the method's defaults, trials 1… points drawn from its declared space (`bench.tune.space`). Trials are
runs like any other (same store, lock, records, resume: a killed search starts again where it stopped,
its drawn points being fixed by the seed), launched under Ray Tune, optionally with ASHA stopping
trials early on their validation score. When the launch ends, `tuning.json` in the store names each
search's chosen trial (`bench.tune.select`: validation only) and its hyperparameters, which
`run grid --hparams-from` applies.
"""
from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.core.errors import UsageError, unknown
from bench.core.search import RECIPE_KEYS
from bench.grid.launchers import LAUNCHERS, EarlyStopping, LaunchOptions
from bench.grid.lock import ResultsLock
from bench.grid.presets import PRESETS, VARIANTS, cell_text, expand, select_cells
from bench.grid.run import (
    Outcome,
    check_data_of_pending,
    counted_on_interrupt,
    launch,
    pending_runs,
    results_store,
)
from bench.grid.schema import FINAL_STATUSES
from bench.grid.store import ResultsStore
from bench.nn.speed import SpeedSpec
from bench.train.config import RunConfig
from bench.train.engine import selection_metric
from bench.tune.choices import CHOICES_FILE
from bench.tune.select import GROUP_KEYS, chosen_trials
from bench.tune.space import apply_point, draw_point, point_of, seed_of, space_of
from methods import METHODS

#: random: Ray Tune's samplers, every point drawn up front; optuna: Ray Tune's OptunaSearch (TPE), each
#: search's next point suggested from its finished trials, one round of trials at a time
SEARCHES = ("random", "optuna")
SCHEDULERS = ("fifo", "asha")


@dataclass
class TuneRequest:
    """What `bench tune` was asked to do."""

    preset: str
    trials: int
    methods: Sequence[str] | None = None
    cells: Sequence[str] | None = None  # "DATASET:RHO:NOISE:RATE" (None: every cell of the preset)
    epochs: int | None = None
    val_fraction: float = 0.1
    seed: int = 0  # the data and training seed of every trial, and the seed of the drawn points
    search: str = "random"
    scheduler: str = "fifo"
    grace_period: int | None = None  # ASHA: epochs before the first rung (None: past every method's warm-up)
    reduction_factor: int = 3
    out: Path | None = None  # default: results/tune-<preset>
    launcher: str = "ray"
    options: LaunchOptions = field(default_factory=LaunchOptions)
    speed: SpeedSpec = SpeedSpec()
    short_run: bool = False


def _check(request: TuneRequest) -> None:
    if request.search not in SEARCHES:
        raise unknown("--search", request.search, SEARCHES)
    if request.scheduler not in SCHEDULERS:
        raise unknown("--scheduler", request.scheduler, SCHEDULERS)
    if isinstance(request.trials, bool) or not isinstance(request.trials, int) or request.trials < 2:
        raise UsageError(f"--trials must be an integer >= 2 (trial 0 runs the defaults), got {request.trials!r}")
    if not 0 < request.val_fraction <= 0.5:
        raise UsageError(f"--val-fraction must be in (0, 0.5]: a search selects on a validation split held out of "
                         f"the noisy training set, got {request.val_fraction}")
    if request.launcher not in LAUNCHERS:
        raise unknown("launcher", request.launcher, LAUNCHERS)
    request.options.validate()
    if request.search == "optuna":
        if importlib.util.find_spec("optuna") is None:
            raise UsageError("--search optuna needs the optuna package: pip install optuna (or -e \".[optuna]\")")
        if request.scheduler != "fifo":
            raise UsageError("--scheduler asha compares the trials of one launch, and --search optuna launches one "
                             "trial per search at a time; use --search random with asha, or --scheduler fifo")
    if request.scheduler == "asha" and request.launcher != "ray":
        raise UsageError("--scheduler asha stops trials through Ray Tune; use --launcher ray or --scheduler fifo")
    if request.options.loggers and request.launcher != "ray":
        raise UsageError("--logger feeds Ray Tune's callbacks; use --launcher ray or drop --logger")
    if request.reduction_factor < 2:
        raise UsageError(f"--reduction-factor must be an integer >= 2, got {request.reduction_factor}")
    for name in request.methods or ():
        if name in VARIANTS:
            raise UsageError(f"'{name}' is an ablation variant of '{VARIANTS.get(name).method}'; tune the method "
                             f"itself (--methods {VARIANTS.get(name).method})")
    if len(PRESETS.get(request.preset).backbone_list()) > 1:
        raise UsageError(f"preset '{request.preset}' sweeps backbones; tune a preset with one backbone")


def base_runs(request: TuneRequest) -> list[RunConfig]:
    """One run per method and cell, as the preset plans it, with the validation split: trial 0 of each search."""
    _check(request)
    preset = PRESETS.get(request.preset)
    methods = list(request.methods) if request.methods else list(preset.methods or METHODS.default_names())
    runs = expand(request.preset, methods=methods, seeds=[request.seed], epochs=request.epochs,
                  speed=request.speed, short_run=request.short_run)
    runs = [cfg.with_(data=replace(cfg.data, val_fraction=request.val_fraction)) for cfg in runs]
    for cfg in runs:
        cfg.data.validate()
        space_of(cfg.method)
    return select_cells(runs, request.cells, request.preset)


def _early_stopping(request: TuneRequest, runs: list[RunConfig]) -> EarlyStopping | None:
    """ASHA's settings: its first rung after every tuned method's main phase has started (a rung inside a
    warm-up would stop methods for a phase they have not begun), or refused when --grace-period is earlier."""
    if request.scheduler != "asha":
        return None
    epochs = max(cfg.epochs for cfg in runs)
    starts = {cfg.method: int(cfg.hparams[METHODS.get(cfg.method).main_phase_from]) + 1 for cfg in runs
              if METHODS.get(cfg.method).main_phase_from and cfg.hparams.get(METHODS.get(cfg.method).main_phase_from)
              is not None}
    floor = max([1, *starts.values()])
    grace = request.grace_period if request.grace_period is not None else floor
    if grace < floor:
        late = max(starts, key=starts.get)
        raise UsageError(f"--grace-period {grace}: {late}'s main phase starts at epoch {floor}, so ASHA would judge "
                         f"it on its warm-up; use --grace-period {floor} or more")
    if grace >= epochs:
        raise UsageError(f"--grace-period {grace} leaves no rung before the last epoch ({epochs}); use a smaller "
                         "--grace-period, more --epochs or --scheduler fifo")
    return EarlyStopping(grace_period=grace, reduction_factor=request.reduction_factor, max_epochs=epochs)


def settings_of(request: TuneRequest, runs: list[RunConfig], early: EarlyStopping | None) -> dict[str, Any]:
    """The search's budget and rules, recorded in every trial's config and in the choices file."""
    metrics = sorted({selection_metric(cfg.data) for cfg in runs})
    return {
        "preset": request.preset, "search": request.search,
        "scheduler": request.scheduler if early is None else
        f"asha (grace {early.grace_period}, reduction {early.reduction_factor})",
        "trials": request.trials, "epochs": max(cfg.epochs for cfg in runs) if runs else request.epochs,
        "objective": " / ".join(metrics), "seed": request.seed, "val_fraction": request.val_fraction,
    }


def plan_tuning(request: TuneRequest) -> tuple[list[RunConfig], dict[str, Any]]:
    """Every trial of every search (trial-major within a cell, so each method's defaults run first), checked,
    and the settings. Nothing is written. Under optuna only trial 0 is known before the others finish."""
    trials, settings, _ = _plan(request)
    return trials, settings


def _trial(base: RunConfig, point: dict[str, Any], trial: int, request: TuneRequest) -> RunConfig:
    tuning = {"trial": trial, "search": request.search, "trials": request.trials, "seed": request.seed}
    return apply_point(base, point).with_(tuning=tuning)


def _plan(request: TuneRequest) -> tuple[list[RunConfig], dict[str, Any], EarlyStopping | None]:
    bases = base_runs(request)
    early = _early_stopping(request, bases)
    settings = settings_of(request, bases, early)
    rounds = request.trials if request.search == "random" else 1
    trials = [_trial(base, draw_point(base.method, request.seed, cell_text(base), trial), trial, request)
              for trial in range(rounds) for base in bases]
    return trials, settings, early


def run_tuning(request: TuneRequest) -> tuple[Outcome, Path]:
    """Run the trials not done yet in the store, then write the choices file; returns it with the outcome."""
    trials, settings, early = _plan(request)
    options = replace(request.options, early_stopping=early)
    store = results_store(request.out, f"tune-{request.preset}")
    check_data_of_pending(store, trials, options)
    store.ensure_writable()
    with ResultsLock(store.root):
        if request.search == "optuna":
            with counted_on_interrupt(store, trials):
                outcome, trials = _run_suggested(request, base_runs(request), store, options)
        else:
            pending = pending_runs(store, trials, f"tune-{request.preset}")
            with counted_on_interrupt(store, trials):
                outcome = launch(pending, store, request.launcher, options)
        return outcome, write_choices(store, trials, settings)


def _run_suggested(request: TuneRequest, bases: list[RunConfig], store: ResultsStore,
                   options: LaunchOptions) -> tuple[Outcome, list[RunConfig]]:
    """Round r runs trial r of every search, each suggested by its own seeded OptunaSearch from the validation
    scores of its finished trials (trial 0: the defaults), then tells it their scores. A resumed search
    replays: the same seed and the same stored scores suggest the same points, so finished trials are found
    by their run ids and not run again."""
    import logging

    from ray.tune.search.optuna import OptunaSearch

    from bench.tune.space import ray_domain

    logging.getLogger("optuna").setLevel(logging.WARNING)
    searchers = []
    for base in bases:
        space = space_of(base.method)
        domains = OptunaSearch.convert_search_space({k: ray_domain(space[k]) for k in sorted(space)})
        searchers.append(OptunaSearch(space=domains, metric="val_score", mode="max",
                                      seed=seed_of(request.seed, base.method, cell_text(base)),
                                      points_to_evaluate=[point_of(base, space)]))
    ran = failed = 0
    trials: list[RunConfig] = []
    for trial in range(request.trials):
        batch = [_trial(base, searcher.suggest(f"{trial}"), trial, request) for base, searcher in zip(bases, searchers)]
        trials += batch
        pending = [cfg for cfg in batch if (store.record(cfg.run_id) or {}).get("status") not in FINAL_STATUSES]
        outcome = launch(pending, store, request.launcher, options)
        ran, failed = ran + outcome.ran, failed + outcome.failed
        for cfg, searcher in zip(batch, searchers):
            score = (store.record(cfg.run_id) or {}).get("summary", {}).get("selected_val")
            if score is None or not math.isfinite(score):
                searcher.on_trial_complete(f"{trial}", error=True)
            else:
                searcher.on_trial_complete(f"{trial}", {"val_score": score})
    print(f"tuning: {ran} trials run, {len(trials) - ran} already done in {store.root}")
    return Outcome(store, ran, failed), trials


def write_choices(store: ResultsStore, trials: list[RunConfig], settings: dict[str, Any]) -> Path:
    """`tuning.json`: the settings and, per search, the chosen trial among `trials` (validation only) with
    the values of its searched keys. Written atomically; returns its path."""
    from bench.train.checkpoint import atomic_write_bytes

    runs, _ = store.tables()
    ids = {cfg.run_id for cfg in trials}
    mine = runs[runs["run_id"].isin(ids)] if len(runs) else runs
    by_id = {cfg.run_id: cfg for cfg in trials}
    chosen = []
    for row in (chosen_trials(mine).to_dict("records") if len(mine) else []):
        cfg = by_id[row["run_id"]]
        point = point_of(cfg, space_of(cfg.method))
        chosen.append({
            **{k: row[k] for k in GROUP_KEYS if k != "preset"}, "trial": int(row["trial"]), "run_id": cfg.run_id,
            "hparams": {k: v for k, v in point.items() if k not in RECIPE_KEYS},
            **{k: point[k] for k in RECIPE_KEYS if k in point},
            "selected_on": row.get("selected_on", ""),
            "selected_val": _number(row["selected_val"]), "selected_acc": _number(row["selected_acc"]),
        })
    path = store.root / CHOICES_FILE
    atomic_write_bytes(path, (json.dumps({**settings, "chosen": chosen}, indent=2, sort_keys=True) + "\n").encode())
    return path


def _number(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
