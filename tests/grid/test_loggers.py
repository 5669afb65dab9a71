"""`bench.grid.loggers`: the `--logger` checks, and the Tune callbacks they build.

TensorBoard runs for real on a one-CPU local Ray; its event files are read back with tensorboardX's protobufs
(no `tensorboard` package is needed). MLflow and W&B are checked for their configuration only, against stand-ins
for their packages, which the test environment need not have."""
from __future__ import annotations

import ast
import importlib.util
import signal
import struct
import sys
import types
from pathlib import Path

import pytest

from bench.core.errors import UsageError
from bench.grid import loggers
from bench.grid.loggers import LOGGERS, check_loggers, logger_callbacks


def test_check_loggers_accepts_installed_ones():
    check_loggers([])
    check_loggers(["tensorboard"])  # tensorboardX comes with ray[tune]


def test_unknown_logger_suggests_the_closest():
    with pytest.raises(UsageError) as err:
        check_loggers(["tensorbord"])
    message = str(err.value)
    assert "unknown logger 'tensorbord'" in message and "did you mean 'tensorboard'?" in message
    assert "\n" not in message


def _pretend(monkeypatch, module: str, installed: bool) -> None:
    """`importlib.util.find_spec` finds (or misses) this module; other modules as they are."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (object() if installed else None) if name == module else real(name, *a))


@pytest.mark.parametrize("name, module", [("mlflow", "mlflow"), ("wandb", "wandb"), ("tensorboard", "tensorboardX")])
def test_missing_package_names_pip_install(monkeypatch, name, module):
    _pretend(monkeypatch, module, installed=False)
    with pytest.raises(UsageError, match=f"^logger '{name}' needs the {module} package: pip install {module}$"):
        check_loggers([name])


def test_ray_is_imported_lazily():
    """No module-level import of Ray (nor of a logger's package): importing the module stays cheap."""
    tree = ast.parse(Path(loggers.__file__).read_text())
    top = [alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names]
    top += [node.module for node in tree.body if isinstance(node, ast.ImportFrom)]
    assert not [m for m in top if m.split(".")[0] in {"ray", "tensorboardX", "mlflow", "wandb"}], top


class _Trial:
    """Just enough of a Tune trial for the callbacks' start hooks."""
    def __init__(self, x):
        self.config = {"x": x}

    def __str__(self):
        return "trial_00000"


def test_mlflow_configuration(monkeypatch, tmp_path):
    _pretend(monkeypatch, "mlflow", installed=True)
    monkeypatch.setitem(sys.modules, "mlflow", types.ModuleType("mlflow"))  # Ray only imports it here
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "my-results"
    [cb] = logger_callbacks(["mlflow"], out, name_of=lambda t: f"run-{t.config['x']}")
    assert cb.tracking_uri == (out / "mlruns").resolve().as_uri() and cb.experiment_name == "my-results"

    started, params = [], []
    cb.tags, cb._trial_runs = {}, {}
    cb.mlflow_util = types.SimpleNamespace(
        start_run=lambda tags, run_name: started.append((run_name, tags)) or
        types.SimpleNamespace(info=types.SimpleNamespace(run_id="r1")),
        log_params=lambda run_id, params_to_log: params.append((run_id, params_to_log)))
    cb.log_trial_start(_Trial(3))
    assert started == [("run-3", {"trial_name": "trial_00000"})] and params == [("r1", {"x": 3})]

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    [cb] = logger_callbacks(["mlflow"], out, name_of=str)
    assert cb.tracking_uri == "http://tracking:5000"


def test_wandb_configuration(monkeypatch, tmp_path):
    wandb_integration = pytest.importorskip("ray.air.integrations.wandb")
    monkeypatch.setattr(wandb_integration, "wandb", types.ModuleType("wandb"))  # "installed"
    _pretend(monkeypatch, "wandb", installed=True)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    out = tmp_path / "my-results"
    [cb] = logger_callbacks(["wandb"], out, name_of=lambda t: f"run-{t.config['x']}")
    assert cb.project == "my-results" and cb.kwargs == {"dir": str(out), "mode": "offline"}

    seen = []
    monkeypatch.setattr(wandb_integration.WandbLoggerCallback, "_start_logging_actor",
                        lambda self, trial, exclude, **kw: seen.append(kw))
    cb._start_logging_actor(_Trial(5), [], name="trial_00000", project="my-results")
    assert seen == [{"name": "run-5", "project": "my-results"}]


# ---- TensorBoard, for real -------------------------------------------------------------------------------------

def _events(folder: Path) -> list:
    """Every Event in the folder's event files, read from their TFRecord framing (CRCs checked)."""
    from tensorboardX.proto import event_pb2
    from tensorboardX.record_writer import masked_crc32c

    events = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            header = data[pos:pos + 8]
            (length,) = struct.unpack("<Q", header)
            (header_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
            body = data[pos + 12:pos + 12 + length]
            (body_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
            assert header_crc == masked_crc32c(header) and body_crc == masked_crc32c(body), f"bad record in {path}"
            events.append(event_pb2.Event.FromString(body))
            pos += 16 + length
    return events


def _scalars(events: list) -> dict[str, dict[int, float]]:
    """tag -> {step: value} of the scalar summaries."""
    out: dict[str, dict[int, float]] = {}
    for event in events:
        for value in event.summary.value:
            if value.HasField("simple_value"):
                out.setdefault(value.tag, {})[event.step] = value.simple_value
    return out


def _acc(x: int, epoch: int) -> float:
    return round(0.1 * x + 0.01 * epoch, 4)


def _make_trainable():
    """The trial function, made here so that Ray pickles it by value (workers cannot import this test module)."""
    def trainable(config):
        from ray import tune

        for epoch in range(3):
            acc = round(0.1 * config["x"] + 0.01 * epoch, 4)  # _acc
            tune.report({"test_acc": acc, "val_acc": 1 - acc, "record_json": '{"status": "ok"}'})

    return trainable


@pytest.fixture
def local_ray(monkeypatch):
    """A one-CPU local Ray for this test only."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        for signum, handler in handlers.items():  # Tune's fit() leaves its own SIGINT handler installed
            signal.signal(signum, handler)


@pytest.mark.ray
@pytest.mark.slow
def test_tensorboard_writes_each_trials_scalars_under_the_results_folder(local_ray, tmp_path):
    from ray import tune

    out, storage = tmp_path / "results", tmp_path / "tune"
    callbacks = logger_callbacks(["tensorboard"], out, name_of=lambda t: "run-" + str(t.config["x"]))
    tuner = tune.Tuner(
        _make_trainable(),
        # a grid over dicts like the launcher's {"run": grid_search([{...}])}, with values hparams cannot hold
        param_space={"x": tune.grid_search([1, 2]),
                     "run": tune.grid_search([{"lr": 0.1, "milestones": [3, 6], "note": None}])},
        tune_config=tune.TuneConfig(trial_dirname_creator=lambda trial: trial.trial_id),
        run_config=tune.RunConfig(storage_path=str(storage), name="exp", callbacks=callbacks, verbose=0),
    )
    results = tuner.fit()
    assert not results.errors

    assert sorted(p.name for p in (out / "tensorboard").iterdir()) == ["run-1", "run-2"]
    for x in (1, 2):
        events = _events(out / "tensorboard" / f"run-{x}")
        scalars = _scalars(events)
        assert scalars["ray/tune/test_acc"] == pytest.approx({e + 1: _acc(x, e) for e in range(3)})
        assert scalars["ray/tune/val_acc"] == pytest.approx({e + 1: 1 - _acc(x, e) for e in range(3)})
        assert not [tag for tag in scalars if "record_json" in tag]  # strings are no scalars
        # hparams (written when the trial ends) hold the grid's values, nested ones flattened
        from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

        starts = [HParamsPluginData.FromString(v.metadata.plugin_data.content).session_start_info
                  for e in events for v in e.summary.value if v.tag == "_hparams_/session_start_info"]
        assert [(s.hparams["x"].number_value, s.hparams["run/lr"].number_value) for s in starts] == [(x, 0.1)]
    # nothing in Tune's (temporary) storage: Ray's stock TensorBoard logger was not added as well
    assert not list(storage.rglob("events.out.tfevents.*"))


def test_all_loggers_are_known():
    assert LOGGERS == ("tensorboard", "mlflow", "wandb")
