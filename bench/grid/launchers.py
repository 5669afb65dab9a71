"""Launchers execute pending runs and hand each finished record to the results store.

- `local`: serial, in this process, without Ray (debugging, small grids).
- `ray`: one Ray Tune trial per run over an explicit `grid_search` list (raytune.md §2).
  The driver writes the store from the trials' reports, so no shared file system is needed
  for results.
Both return the number of runs that failed. `LaunchHooks` let a caller observe a launch
without touching this code (`bench perf --launcher` splits its wall time with them).

A launch stopped by SIGINT (Ctrl-C) or SIGTERM raises `Interrupted` (never returns normally):
the records stored so far stay, the runs in flight are dropped (a checkpointed run resumes on the
next launch). Under Ray the first signal asks Tune to stop its trials, a second one aborts at once.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.core.errors import UsageError
from bench.grid.store import ResultsStore
from bench.train.config import RunConfig
from bench.train.engine import TrialOptions, run_trial


@dataclass(frozen=True)
class EarlyStopping:
    """Ray Tune's ASHA scheduler on the per-epoch validation score ("val_score", higher is better): a trial
    whose score at a rung (`grace_period` epochs, then ×`reduction_factor`) is not in the top
    1/`reduction_factor` of the trials that reached it is stopped; a stopped run is stored with status
    "stopped" and its epochs so far."""

    grace_period: int
    reduction_factor: int = 3
    max_epochs: int = 1


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
    #: Ray: experiment trackers fed by Tune's callbacks (`bench.grid.loggers.LOGGERS`), written under the store
    loggers: tuple[str, ...] = ()
    #: Ray: stop trials early on their validation score (`bench tune --scheduler asha`); None runs all to the end
    early_stopping: EarlyStopping | None = None
    #: Ray: show Ray's start-up banner and Tune's own progress output (off: the progress lines only)
    verbose: bool = False

    def validate(self) -> None:
        """A UsageError naming the first value out of range, or resources this machine does not have.

        Without `address` a local Ray cluster of this machine runs the trials, so a trial may ask for at
        most its CPUs and GPUs (Ray would otherwise leave it pending for ever). With `address` the remote
        cluster is only asked whether it answers; `check_cluster_fits` compares the request with its nodes
        once connected."""
        for flag, value in (("--cpus-per-trial", self.cpus_per_trial), ("--gpus-per-trial", self.gpus_per_trial)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise UsageError(f"{flag} must be a finite number, got {value!r}")
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise UsageError(f"--cpus-per-trial must be > 0 and --gpus-per-trial >= 0, got "
                             f"{self.cpus_per_trial:g} and {self.gpus_per_trial:g}")
        for flag, value, low in (("--checkpoint-every", self.checkpoint_every, 1),
                                 ("--max-failures", self.max_failures, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UsageError(f"{flag} must be an integer >= {low}, got {value!r}")
        if self.loggers:
            from bench.grid.loggers import check_loggers

            check_loggers(self.loggers)
        if self.data_workers is not None and self.data_workers < 0:
            raise UsageError(f"--data-workers must be >= 0 (0: decode in the training process), "
                             f"got {self.data_workers}")
        if self.address:
            check_address_answers(self.address)
            return
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if self.cpus_per_trial > cpus:
            raise UsageError(f"--cpus-per-trial {self.cpus_per_trial:g} is more than the {cpus} CPUs of this "
                             f"machine; use at most {cpus}, or --address of a Ray cluster with larger nodes")
        if self.gpus_per_trial > 0:
            import torch

            gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if self.gpus_per_trial > gpus:
                have = f"the {gpus} CUDA GPU(s) of this machine" if gpus else "this machine, which has no CUDA GPU"
                raise UsageError(f"--gpus-per-trial {self.gpus_per_trial:g} asks for more than {have}; use "
                                 f"--gpus-per-trial {gpus} at most, or --address of a Ray cluster with GPUs")


#: seconds to wait for a Ray cluster's address to accept a connection (ray.init itself retries for minutes)
ADDRESS_TIMEOUT_S = 10.0


def check_address_answers(address: str, timeout: float = ADDRESS_TIMEOUT_S) -> None:
    """A UsageError unless something accepts a TCP connection at `address` ("HOST:PORT" or
    "ray://HOST:PORT"; "auto" and other forms are left to Ray, which fails fast on them)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if address == "auto" or not sep or not port.isdigit() or not host:
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise UsageError(f"--address {address}: no Ray cluster answers there ({why} after at most {timeout:g} s); "
                         f"start one (`ray start --head`) or give the head's address as HOST:PORT (`ray status` on "
                         f"the head prints it)") from None


def check_cluster_fits(opts: LaunchOptions, nodes: list[dict[str, Any]]) -> None:
    """A UsageError when no alive node of the cluster has the CPUs / GPUs one trial asks for (Ray would
    leave such trials pending for ever). `nodes`: `ray.nodes()`."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive")]
    most_cpus = max((r.get("CPU", 0) for r in alive), default=0)
    most_gpus = max((r.get("GPU", 0) for r in alive), default=0)
    if opts.cpus_per_trial <= most_cpus and opts.gpus_per_trial <= most_gpus:
        return
    total_cpus, total_gpus = sum(r.get("CPU", 0) for r in alive), sum(r.get("GPU", 0) for r in alive)
    raise UsageError(f"--cpus-per-trial {opts.cpus_per_trial:g} / --gpus-per-trial {opts.gpus_per_trial:g}: no "
                     f"node of the cluster at {opts.address} has that much (its {len(alive)} node(s): {total_cpus:g} "
                     f"CPUs and {total_gpus:g} GPUs in all, the largest {most_cpus:g} CPUs / {most_gpus:g} GPUs); ask "
                     f"for at most that per trial")


@dataclass
class LaunchHooks:
    """Observers of a launch. `on_event(name)` is called at "launch_start" / "launch_end" and,
    under Ray, at "ray_init_start" / "ray_init_end", "tuner_init", "fit_start" / "fit_end" and
    "ray_shutdown_start" / "ray_shutdown_end"; `tune_callbacks` are added to the Tuner's."""

    on_event: Callable[[str], None] = lambda name: None
    tune_callbacks: list[Any] = field(default_factory=list)


class Interrupted(KeyboardInterrupt):
    """A launch (or a command) stopped by a signal before all its runs ended; what was stored stays.

    A KeyboardInterrupt, so that no `except Exception` (a run recording its own failure) swallows it.
    `finished` / `remaining`: the grid's runs done / not done, filled in by whoever knows the grid
    (`bench.grid.run`); None when unknown."""

    def __init__(self, signum: int, finished: int | None = None, remaining: int | None = None) -> None:
        super().__init__(signum)
        self.signum, self.finished, self.remaining = signum, finished, remaining

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by this signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum

    def summary(self) -> str:
        """One line: the signal, how many runs are done and left, and how to resume."""
        counts = ""
        if self.finished is not None and self.remaining is not None:
            counts = (f": {self.finished} of {self.finished + self.remaining} runs done, "
                      f"{self.remaining} remain")
        return (f"bench: interrupted by {signal.Signals(self.signum).name}{counts}; finished runs are saved, "
                f"re-run the same command to resume (done runs are skipped)")


class InterruptGuard:
    """While active (a `with` block in the main thread), SIGINT and SIGTERM raise `Interrupted` carrying
    the signal, and the handlers found on entry come back on exit. A signal that was ignored on entry
    stays ignored. `received` is the first signal that came.

    `graceful_via`: a signal whose handler, when another one than on entry is installed, stops the work
    in hand gracefully (Ray Tune's SIGUSR1 handler during `fit()`); the first SIGINT / SIGTERM then calls
    it instead of raising, and a second one raises. Inside `deferred()` (a store write) a signal is held
    back until the block ends."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self.graceful_via: int | None = None
        self._previous: dict[int, Any] = {}
        self._graceful_before: Any = None
        self._deferring = False
        self._held = False

    def __getstate__(self) -> dict[str, Any]:
        """Signal handlers belong to this process: a pickled copy (Tune saves its callbacks, which hold this
        guard) carries none, and so never drags in whatever object a library's handler is bound to."""
        return {**self.__dict__, "_previous": {}, "_graceful_before": None}

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.getsignal(signum) for signum in self.SIGNALS}
            self.install()
        return self

    def install(self) -> None:
        """(Again) route the signals here, e.g. after a library replaced a handler (ray.init: SIGTERM)."""
        for signum, before in self._previous.items():
            if before is not signal.SIG_IGN:
                signal.signal(signum, self._on_signal)

    def allow_graceful(self, signum: int | None) -> None:
        """Start (a signal) or end (None) a graceful-stop window; see the class docstring."""
        if signum is not None and self._previous:
            self._graceful_before = signal.getsignal(signum)
        elif self.graceful_via is not None and self._previous:
            signal.signal(self.graceful_via, self._graceful_before)  # drop the stale handler
        self.graceful_via = signum if self._previous else None

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold a signal back until the block ends (a record and its table rows are written whole)."""
        outer = self._deferring
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = outer
        if self._held and not outer:
            self._held = False
            raise Interrupted(self.received or signal.SIGINT)

    def _on_signal(self, signum: int, frame: Any) -> None:
        first = self.received is None
        if first:
            self.received = signum
        if first and self.graceful_via is not None:
            handler = signal.getsignal(self.graceful_via)
            if callable(handler) and handler != self._graceful_before:
                print(f"bench: {signal.Signals(signum).name} received, stopping the runs in flight "
                      f"(send it again to abort at once)", file=sys.stderr, flush=True)
                handler(self.graceful_via, frame)
                return
        if self._deferring:
            self._held = True
            return
        raise Interrupted(self.received)

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        for signum, before in self._previous.items():
            signal.signal(signum, before)
        self._previous = {}
        if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Interrupted):
            raise Interrupted(self.received or signal.SIGINT) from None
        if exc is None and self.received is not None:  # a signal that came while a graceful stop was allowed
            raise Interrupted(self.received)


class Progress:
    """One line per finished run, with an ETA from the mean time per run so far."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.failed = total, 0, 0
        self.ids: set[str] = set()  # run ids with a stored record
        self.started = time.monotonic()

    def finished(self, record: dict[str, Any]) -> None:
        self.done += 1
        self.ids.add(record["run_id"])
        cfg = RunConfig.from_dict(record["config"])
        summary = record.get("summary", {})
        if record["status"] == "done":
            what = f"last {summary['last_acc']:.2f}% best {summary['best_acc']:.2f}%"
            if summary.get("selected_on"):
                what += f" selected {summary['selected_acc']:.2f}%"
        elif record["status"] == "stopped":
            what = f"stopped early by the scheduler after {len(record.get('epochs', []))} epoch(s)"
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
    """Run serially in this process; each record is stored as soon as its run ends. A signal stops the
    run in flight (`Interrupted`)."""
    hooks = hooks or LaunchHooks()
    hooks.on_event("launch_start")
    progress = Progress(len(runs))
    topts = trial_options(opts, store, colocated=1, threads=None)
    try:
        with InterruptGuard() as guard:
            for cfg in runs:
                record = run_trial(cfg, topts)
                with guard.deferred():
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
    # each epoch's row also travels whole, so that a run a scheduler stops early is stored with its epochs
    record = run_trial(cfg, opts, report=lambda row: tune.report({**row, "row_json": json.dumps(row)}))
    # the final report carries the run's validation score too: a scheduler's metric must be in every report
    tune.report({"record_json": json.dumps(record), "status": record["status"],
                 "val_score": record.get("summary", {}).get("selected_val", float("nan"))})


def _store_callback(store: ResultsStore, progress: Progress, guard: InterruptGuard) -> tuple[Any, Any]:
    """(the Tune callback that stores each final record, the stopper that ends the launch when one cannot be)

    An exception raised in a Tune callback comes out of `fit()` wrapped in Tune's own; so a store that
    cannot write (disk full, permission lost) is remembered by the stopper, which stops every trial,
    and `launch_ray` raises that error itself once `fit()` has returned."""
    from ray import tune

    from bench.grid.store import InvalidRecordError, StoreWriteError

    class StopOnStoreError(tune.Stopper):
        def __init__(self) -> None:
            self.error: Exception | None = None

        def __call__(self, trial_id: str, result: dict) -> bool:
            return False

        def stop_all(self) -> bool:
            return self.error is not None

    stopper = StopOnStoreError()

    class StoreCallback(tune.Callback):
        """Writes each final record to the store as soon as Tune hands it to the driver, and the epochs so far
        of a run that a scheduler stopped early (status "stopped")."""

        def __init__(self) -> None:
            self.rows: dict[str, list[dict[str, Any]]] = {}

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            if "record_json" in result:
                self.rows.pop(trial.trial_id, None)
                self.store(json.loads(result["record_json"]))
            elif "row_json" in result:
                self.rows.setdefault(trial.trial_id, []).append(json.loads(result["row_json"]))

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            rows = self.rows.pop(trial.trial_id, None)
            if rows is None or guard.received is not None or stopper.error is not None:
                return  # its record is stored, or the launch is stopping (the run resumes)
            cfg = RunConfig.from_dict(trial.config["run"])
            if cfg.run_id not in progress.ids:
                self.store(stopped_record(cfg, rows))

        def store(self, record: dict[str, Any]) -> None:
            if stopper.error is not None:  # the launch is stopping: this run's checkpoint resumes it
                return
            try:
                with guard.deferred():
                    store.write(record)
                    progress.finished(record)
            except (StoreWriteError, InvalidRecordError) as exc:
                stopper.error = exc

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            # run_trial records its own failures; this is a crash of the worker itself
            if guard.received is not None:  # a trial stopped by an interrupt is not a failed run
                return
            cfg = RunConfig.from_dict(trial.config["run"])
            if cfg.run_id in store.completed_ids():
                return
            reason = _error_summary(getattr(trial, "error_file", None))
            self.store({
                "run_id": cfg.run_id, "preset": cfg.preset, "config": cfg.to_dict(),
                "status": "failed", "error": f"Ray trial error: {reason}", "epochs": [], "summary": {},
            })

    return StoreCallback(), stopper


def stopped_record(cfg: RunConfig, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The record of a run a scheduler stopped after `rows` (its epochs so far): status "stopped". A trial
    retried after a worker died reports some epochs again: the last report of each epoch is kept."""
    from datetime import datetime, timezone

    from bench.train.engine import selection_metric, summarize

    rows = sorted({row["epoch"]: row for row in rows}.values(), key=lambda row: row["epoch"])

    return {
        "run_id": cfg.run_id, "preset": cfg.preset, "config": cfg.to_dict(), "status": "stopped",
        "error": f"stopped early by the scheduler after epoch {rows[-1]['epoch']} (validation score below its rung)",
        "epochs": rows, "summary": {**summarize(rows, [r["sec_per_iter"] for r in rows], selection_metric(cfg.data)),
                                    "sec_total": sum(r["sec_epoch"] for r in rows)},
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _error_summary(error_file: str | None, limit: int = 300) -> str:
    """The last line of a trial's error.txt (the exception), or "worker died" when there is none."""
    try:
        lines = [line.strip() for line in Path(error_file).read_text(errors="replace").splitlines() if line.strip()]
    except (OSError, TypeError):
        lines = []
    return lines[-1][:limit] if lines else "worker died"


def _scheduler(early: EarlyStopping | None) -> dict[str, Any]:
    """TuneConfig settings for ASHA on the validation score, one ASHA per search ({} for none: every trial
    runs to the end)."""
    if early is None:
        return {}
    from bench.grid.schedulers import PerSearchASHA

    return {"scheduler": PerSearchASHA(early.grace_period, early.reduction_factor, early.max_epochs)}


@contextlib.contextmanager
def _quiet_tune(quiet: bool) -> Iterator[None]:
    """While `quiet`, Tune prints nothing of its own (its experiment banner and INFO lines): the launch's
    progress lines say what happens. Its legacy reporter at verbose=0 is silent; the new one is not."""
    if not quiet:
        yield
        return
    name, before = "RAY_AIR_NEW_OUTPUT", os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ[name] = "0"
    tune_logger = logging.getLogger("ray.tune")
    level = tune_logger.level
    tune_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        tune_logger.setLevel(level)
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@contextlib.contextmanager
def _graceful_tune_stop(guard: InterruptGuard) -> Iterator[None]:
    """During `fit()`: Tune leaves SIGINT to the guard (TUNE_DISABLE_SIGINT_HANDLER) and the guard's
    first SIGINT / SIGTERM calls Tune's SIGUSR1 handler, which stops the trials and returns from `fit()`.
    The guard so knows which signal came; Tune's own SIGINT handler would swallow it. Once stopped,
    Tune's warnings about it (resume with `Tuner.restore`, trials without metrics) are dropped: the
    command says itself how to resume."""
    name = "TUNE_DISABLE_SIGINT_HANDLER"
    before = os.environ.get(name)
    os.environ[name] = "1"
    guard.allow_graceful(getattr(signal, "SIGUSR1", None))
    def quiet(record: logging.LogRecord) -> bool:
        return guard.received is None

    loggers = [logging.getLogger(n) for n in ("ray.tune.tune", "ray.tune.analysis.experiment_analysis")]
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)
        guard.allow_graceful(None)
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def launch_ray(runs: list[RunConfig], store: ResultsStore, opts: LaunchOptions,
               hooks: LaunchHooks | None = None) -> int:
    """Run every config as a Ray Tune trial on a local or existing cluster. A signal stops the trials
    and raises `Interrupted` once Ray is shut down; so does a `fit()` that returns with runs unrecorded."""
    hooks = hooks or LaunchHooks()
    hooks.on_event("launch_start")
    with InterruptGuard() as guard:
        try:
            return _launch_ray(runs, store, opts, hooks, guard)
        finally:
            hooks.on_event("launch_end")


def _launch_ray(runs: list[RunConfig], store: ResultsStore, opts: LaunchOptions, hooks: LaunchHooks,
                guard: InterruptGuard) -> int:
    import ray
    from ray import tune

    started_here = not ray.is_initialized()
    tune_dir = Path(tempfile.mkdtemp(prefix="bench-tune-"))  # mode 0700
    try:
        if started_here:
            hooks.on_event("ray_init_start")
            try:
                level = logging.INFO if opts.verbose else logging.WARNING  # the banner is an INFO line
                if opts.address:
                    ray.init(address=opts.address, log_to_driver=False, logging_level=level)
                else:
                    # A fresh single-machine cluster: no token file written to $HOME (raytune.md §0.5).
                    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
                    ray.init(include_dashboard=False, log_to_driver=False, logging_level=level)
            except SystemExit as exc:  # ray.init's own SIGTERM handler exits with the signal's number
                if exc.code != signal.SIGTERM:
                    raise
                raise Interrupted(guard.received or signal.SIGTERM) from None
            finally:
                guard.install()  # ray.init replaced the SIGTERM handler with one that exits
            hooks.on_event("ray_init_end")
        if opts.address:
            check_cluster_fits(opts, ray.nodes())
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
        store_callback, stopper = _store_callback(store, progress, guard)
        loggers: list[Any] = []
        if opts.loggers:
            from bench.grid.loggers import logger_callbacks

            loggers = logger_callbacks(opts.loggers, store.root,
                                       name_of=lambda trial: RunConfig.from_dict(trial.config["run"]).run_id)
        hooks.on_event("tuner_init")
        tuner = tune.Tuner(
            trainable,
            param_space={"run": tune.grid_search([cfg.to_dict() for cfg in runs])},
            # short trial folders: the default name embeds the whole (long) config
            tune_config=tune.TuneConfig(
                trial_dirname_creator=lambda trial: trial.trial_id,
                # warm workers keep torch imported and base datasets cached; every run seeds itself
                reuse_actors=True,
                **_scheduler(opts.early_stopping),
            ),
            run_config=tune.RunConfig(
                name=f"launch-{time.strftime('%Y%m%d-%H%M%S')}",
                # Tune's own files (trial errors it unpickles, experiment state) live in a folder only this
                # driver can write, never in the shared results folder; the store has everything kept
                storage_path=str(tune_dir),
                callbacks=[store_callback, *loggers, *hooks.tune_callbacks],
                stop=stopper,
                # a retried trial starts again in a fresh worker and resumes from its checkpoint
                failure_config=tune.FailureConfig(max_failures=opts.max_failures),
                verbose=0,
            ),
        )
        hooks.on_event("fit_start")
        with _graceful_tune_stop(guard), _quiet_tune(not opts.verbose):
            tuner.fit()
        hooks.on_event("fit_end")
        if stopper.error is not None:
            raise stopper.error
        # Tune returns normally from a stop request, its trials unfinished: that is no finished launch
        unrecorded = len({cfg.run_id for cfg in runs} - progress.ids)
        if guard.received is not None or unrecorded:
            raise Interrupted(guard.received or signal.SIGINT)
        return progress.failed
    finally:
        shutil.rmtree(tune_dir, ignore_errors=True)
        if started_here:
            hooks.on_event("ray_shutdown_start")
            with guard.deferred():  # a signal now waits until Ray has stopped its processes
                ray.shutdown()
            hooks.on_event("ray_shutdown_end")


Launcher = Callable[[list[RunConfig], ResultsStore, LaunchOptions, "LaunchHooks | None"], int]
LAUNCHERS: dict[str, Launcher] = {
    "local": launch_local,
    "ray": launch_ray,
}
