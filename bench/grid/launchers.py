"""Launchers execute pending runs and hand each finished record to the results store.

- `local`: serial, in this process, without Ray (debugging, small grids).
- `ray`: one Ray Tune trial per run over an explicit `grid_search` list (raytune.md §2).
  The driver writes the store from the trials' reports, so no shared file system is needed
  for results.
Both return the number of runs that failed. `LaunchHooks` let a caller observe a launch
without touching this code (`bench perf --launcher` splits its wall time with them).
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.core.errors import UsageError
from bench.grid.store import ResultsStore
from bench.train.config import RunConfig
from bench.train.engine import TrialOptions, run_trial


@dataclass
class LaunchOptions:
    """Resources and paths for a launch."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None
    device: str = "auto"
    data_root: str | None = None
    download: bool = False
    checkpoint_every: int = 10
    max_failures: int = 2  # Ray: retries of a trial whose worker died
    data_workers: int | None = None  # processes decoding streamed images (None: the engine's default)

    def validate(self) -> None:
        """A UsageError naming the first value out of range."""
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise UsageError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
        if self.max_failures < 0:
            raise UsageError("--max-failures must be >= 0")
        if self.data_workers is not None and self.data_workers < 0:
            raise UsageError(f"--data-workers must be >= 0 (0: decode in the training process), "
                             f"got {self.data_workers}")


@dataclass
class LaunchHooks:
    """Observers of a launch. `on_event(name)` is called at "launch_start" / "launch_end" and,
    under Ray, at "ray_init_start" / "ray_init_end", "tuner_init", "fit_start" / "fit_end" and
    "ray_shutdown_start" / "ray_shutdown_end"; `tune_callbacks` are added to the Tuner's."""

    on_event: Callable[[str], None] = lambda name: None
    tune_callbacks: list[Any] = field(default_factory=list)


class Progress:
    """One line per finished run, with an ETA from the mean time per run so far."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.failed = total, 0, 0
        self.started = time.monotonic()

    def finished(self, record: dict[str, Any]) -> None:
        self.done += 1
        cfg = RunConfig.from_dict(record["config"])
        summary = record.get("summary", {})
        if record["status"] == "done":
            what = f"last {summary['last_acc']:.2f}% best {summary['best_acc']:.2f}%"
        else:
            self.failed += 1
            what = f"FAILED: {record.get('error', '')}"
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        print(
            f"[{self.done}/{self.total}] {record['run_id']} {cfg.label()}: {what} "
            f"({summary.get('sec_total', float('nan')):.1f}s) ETA {_clock(eta)}",
            flush=True,
        )


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def trial_options(opts: LaunchOptions, store: ResultsStore, colocated: int, threads: int | None) -> TrialOptions:
    return TrialOptions(
        device=opts.device, data_root=opts.data_root, download=opts.download,
        checkpoint_dir=store.checkpoint_dir, checkpoint_every=opts.checkpoint_every,
        colocated=colocated, threads=threads, data_workers=opts.data_workers,
    )


def launch_local(runs: list[RunConfig], store: ResultsStore, opts: LaunchOptions,
                 hooks: LaunchHooks | None = None) -> int:
    """Run serially in this process; each record is stored as soon as its run ends."""
    hooks = hooks or LaunchHooks()
    hooks.on_event("launch_start")
    progress = Progress(len(runs))
    topts = trial_options(opts, store, colocated=1, threads=None)
    try:
        for cfg in runs:
            record = run_trial(cfg, topts)
            store.write(record)
            progress.finished(record)
    finally:
        hooks.on_event("launch_end")
    return progress.failed


# ----------------------------------------------------------------------------------- Ray
def ray_trial(config: dict[str, Any], trial_opts: dict[str, Any]) -> None:
    """Tune function trainable: run one config, forward epochs, finish with the whole record."""
    from ray import tune

    cfg = RunConfig.from_dict(config["run"])
    opts = TrialOptions(**{**trial_opts, "checkpoint_dir": Path(trial_opts["checkpoint_dir"])})
    record = run_trial(cfg, opts, report=lambda row: tune.report(row))
    tune.report({"record_json": json.dumps(record), "status": record["status"]})


def _store_callback(store: ResultsStore, progress: Progress) -> Any:
    from ray import tune

    class StoreCallback(tune.Callback):
        """Writes each final record to the store as soon as Tune hands it to the driver."""

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            if "record_json" in result:
                record = json.loads(result["record_json"])
                store.write(record)
                progress.finished(record)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            # run_trial records its own failures; this is a crash of the worker itself
            cfg = RunConfig.from_dict(trial.config["run"])
            if cfg.run_id in store.completed_ids():
                return
            reason = getattr(trial, "error_file", None) or "worker died"
            record = {
                "run_id": cfg.run_id, "preset": cfg.preset, "config": cfg.to_dict(),
                "status": "failed", "error": f"Ray trial error: {reason}", "epochs": [], "summary": {},
            }
            store.write(record)
            progress.finished(record)

    return StoreCallback()


def launch_ray(runs: list[RunConfig], store: ResultsStore, opts: LaunchOptions,
               hooks: LaunchHooks | None = None) -> int:
    """Run every config as a Ray Tune trial on a local or existing cluster."""
    hooks = hooks or LaunchHooks()
    hooks.on_event("launch_start")
    import ray
    from ray import tune

    started_here = not ray.is_initialized()
    if started_here:
        hooks.on_event("ray_init_start")
        if opts.address:
            ray.init(address=opts.address, log_to_driver=False)
        else:
            # A fresh single-machine cluster: no token file written to $HOME (raytune.md §0.5).
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            ray.init(include_dashboard=False, log_to_driver=False)
        hooks.on_event("ray_init_end")
    try:
        node_cpus = ray.cluster_resources().get("CPU", 1)
        if opts.gpus_per_trial > 0:
            colocated = max(1, math.floor(1 / opts.gpus_per_trial))
        else:
            colocated = max(1, math.floor(node_cpus / opts.cpus_per_trial))
        colocated = min(colocated, len(runs))
        threads = max(1, int(opts.cpus_per_trial))
        topts = asdict(trial_options(opts, store, colocated, threads))
        topts["checkpoint_dir"] = str(topts["checkpoint_dir"])
        trainable = tune.with_resources(
            tune.with_parameters(ray_trial, trial_opts=topts),
            {"cpu": opts.cpus_per_trial, "gpu": opts.gpus_per_trial},
        )
        progress = Progress(len(runs))
        hooks.on_event("tuner_init")
        tuner = tune.Tuner(
            trainable,
            param_space={"run": tune.grid_search([cfg.to_dict() for cfg in runs])},
            # short trial folders: the default name embeds the whole (long) config
            tune_config=tune.TuneConfig(
                trial_dirname_creator=lambda trial: trial.trial_id,
                # warm workers keep torch imported and base datasets cached; every run seeds itself
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=f"launch-{time.strftime('%Y%m%d-%H%M%S')}",
                storage_path=str(store.root / ".ray"),
                callbacks=[_store_callback(store, progress), *hooks.tune_callbacks],
                # a retried trial starts again in a fresh worker and resumes from its checkpoint
                failure_config=tune.FailureConfig(max_failures=opts.max_failures),
                verbose=0,
            ),
        )
        hooks.on_event("fit_start")
        tuner.fit()
        hooks.on_event("fit_end")
        return progress.failed
    finally:
        if started_here:
            hooks.on_event("ray_shutdown_start")
            ray.shutdown()
            hooks.on_event("ray_shutdown_end")
        hooks.on_event("launch_end")


Launcher = Callable[[list[RunConfig], ResultsStore, LaunchOptions, "LaunchHooks | None"], int]
LAUNCHERS: dict[str, Launcher] = {
    "local": launch_local,
    "ray": launch_ray,
}
