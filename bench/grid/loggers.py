"""Experiment loggers for Ray Tune launches (`--logger tensorboard|mlflow|wandb`): Ray's own logger callbacks,
each writing under the results folder (or where its tool is configured to), never into Tune's temporary storage.

Ray is imported inside the functions, so importing this module stays cheap.
"""
from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.core.errors import UsageError, unknown

LOGGERS = ("tensorboard", "mlflow", "wandb")
#: logger -> (the module it needs, the pip package that provides it)
_REQUIRES = {"tensorboard": ("tensorboardX", "tensorboardX"), "mlflow": ("mlflow", "mlflow"),
             "wandb": ("wandb", "wandb")}


def check_loggers(names: Sequence[str]) -> None:
    """Raise UsageError for an unknown logger name or for a logger whose package is not installed."""
    for name in names:
        if name not in LOGGERS:
            raise unknown("logger", name, LOGGERS)
        module, package = _REQUIRES[name]
        if importlib.util.find_spec(module) is None:
            raise UsageError(f"logger '{name}' needs the {package} package: pip install {package}")


def logger_callbacks(names: Sequence[str], out: Path, name_of: Callable[[Any], str]) -> list[Any]:
    """The Ray Tune callbacks for these loggers (each once, in the order given).

    `out`: the results folder; `name_of(trial)`: the trial's run name (its TensorBoard folder, MLflow run name,
    W&B run name). tensorboard writes to `out/tensorboard/<name>/`; mlflow to `MLFLOW_TRACKING_URI`, else to
    `out/mlruns`, in the experiment named after `out`; wandb to the project named after `out`, in the mode that
    `WANDB_MODE` sets (its local files under `out/wandb/`)."""
    check_loggers(names)
    out = Path(out).resolve()
    makers = {"tensorboard": _tensorboard, "mlflow": _mlflow, "wandb": _wandb}
    return [makers[name](out, name_of) for name in dict.fromkeys(names)]


def _tensorboard(out: Path, name_of: Callable[[Any], str]) -> Any:
    """Ray's TBXLoggerCallback (scalars of the numeric results; hparams when a trial ends) writing to
    `out/tensorboard/<name>/` in place of the trial's Tune folder."""
    from ray.tune.logger import TBXLoggerCallback

    class TensorBoardCallback(TBXLoggerCallback):
        def log_trial_start(self, trial: Any) -> None:
            if trial in self._trial_writer:  # a restarted trial: a new events file in the same folder
                self._trial_writer[trial].close()
            folder = out / "tensorboard" / name_of(trial)
            folder.mkdir(parents=True, exist_ok=True)
            self._trial_writer[trial] = self._summary_writer_cls(str(folder), flush_secs=30)
            self._trial_result[trial] = {}

    return TensorBoardCallback()


def _mlflow(out: Path, name_of: Callable[[Any], str]) -> Any:
    """Ray's MLflowLoggerCallback, each trial's run named `name_of(trial)`."""
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    class MLflowCallback(MLflowLoggerCallback):
        def log_trial_start(self, trial: Any) -> None:
            if trial not in self._trial_runs:
                run = self.mlflow_util.start_run(tags={**self.tags, "trial_name": str(trial)}, run_name=name_of(trial))
                self._trial_runs[trial] = run.info.run_id
            if not self.log_params_on_trial_end:
                self.mlflow_util.log_params(run_id=self._trial_runs[trial], params_to_log=trial.config)

    uri = os.environ.get("MLFLOW_TRACKING_URI") or (out / "mlruns").as_uri()
    return MLflowCallback(tracking_uri=uri, experiment_name=out.name)


def _wandb(out: Path, name_of: Callable[[Any], str]) -> Any:
    """Ray's WandbLoggerCallback, each trial's run named `name_of(trial)`; WANDB_MODE (e.g. offline) is passed
    to the logging actor explicitly, as that actor may not see the driver's environment."""
    from ray.air.integrations.wandb import WandbLoggerCallback

    class WandbCallback(WandbLoggerCallback):
        def _start_logging_actor(self, trial: Any, exclude_results: list[str], **wandb_init_kwargs: Any) -> None:
            super()._start_logging_actor(trial, exclude_results, **{**wandb_init_kwargs, "name": name_of(trial)})

    out.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"dir": os.environ.get("WANDB_DIR") or str(out)}
    if os.environ.get("WANDB_MODE"):
        kwargs["mode"] = os.environ["WANDB_MODE"]
    return WandbCallback(project=out.name, **kwargs)
