"""Speed settings: what is active where, that the fast paths train on CPU, that the flags are
recorded, and that --deterministic turns them off. (GPU timings live in `bench perf`.)"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from helpers import digits_run

from bench.cli import main
from bench.core.errors import UsageError
from bench.nn.speed import ActiveSpeed, SpeedSpec, apply_global, resolve_speed
from bench.train.config import RunConfig
from bench.train.engine import TrialOptions, build_method, run_trial
from methods import METHODS
from noisytail_datasets import build_data

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture(autouse=True)
def _restore_global_switches():
    yield
    apply_global(ActiveSpeed(device_type="cpu"))


def test_defaults_turn_on_bf16_and_channels_last_on_cuda_only():
    gpu, cpu = resolve_speed(SpeedSpec(), CUDA), resolve_speed(SpeedSpec(), CPU)
    assert (gpu.amp, gpu.channels_last, gpu.cudnn_benchmark, gpu.compile) == (True, True, True, "off")
    assert (cpu.amp, cpu.channels_last, cpu.cudnn_benchmark) == (False, False, False)
    assert not resolve_speed(SpeedSpec(), CUDA, image_input=False).channels_last
    off = resolve_speed(SpeedSpec(amp="off", channels_last="off"), CUDA)
    assert not off.amp and not off.channels_last


def test_deterministic_turns_every_flag_off():
    active = resolve_speed(SpeedSpec(compile=True, deterministic=True), CUDA)
    assert active == ActiveSpeed(deterministic=True, device_type="cuda")
    apply_global(active)
    assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark


def test_bad_speed_values_are_usage_errors(capsys):
    with pytest.raises(UsageError, match="unknown --channels-last 'yes'"):
        resolve_speed(SpeedSpec(channels_last="yes"), CPU)
    assert main(["run", "one", "--method", "ce", "--dataset", "digits", "--amp", "fp8"]) == 2
    assert "unknown --amp 'fp8'; choose one of: auto, bf16, off" in capsys.readouterr().err


def test_speed_is_hashed_only_when_it_is_not_the_default():
    cfg = digits_run("ce")
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert "speed" in cfg.to_dict()
    fast = replace(cfg, speed=SpeedSpec(compile=True))
    assert fast.run_id != cfg.run_id and RunConfig.from_dict(fast.to_dict()) == fast
    old_record = {k: v for k, v in cfg.to_dict().items() if k != "speed"}  # written before `speed` existed
    assert RunConfig.from_dict(old_record).run_id == cfg.run_id


def _method(name: str, speed: ActiveSpeed, backbone: str = "small_cnn"):
    cfg = replace(digits_run(name), backbone=backbone)
    bundle = build_data(cfg.data, device=CPU)
    torch.manual_seed(0)
    return build_method(cfg, bundle, CPU, torch.Generator().manual_seed(0), speed), bundle


def test_bf16_autocast_keeps_per_sample_losses_in_fp32():
    method, bundle = _method("ce", ActiveSpeed(amp=True, device_type="cpu"))
    x = method.ctx.transform(bundle.train_x[:16], train=False)
    with method.ctx.speed.autocast():
        assert method.model(x).dtype == torch.bfloat16
    logits = method.forward(x)
    assert logits.dtype == torch.float32
    assert method.loss(logits, bundle.train_y[:16], 0).dtype == torch.float32


@pytest.mark.parametrize("name", ["ce", "dividemix"])
def test_a_bf16_step_stays_close_to_the_fp32_step(name):
    losses = []
    for speed in (ActiveSpeed(device_type="cpu"), ActiveSpeed(amp=True, device_type="cpu")):
        method, bundle = _method(name, speed)
        method.on_epoch_start(0)
        from methods.base import Batch

        batch = Batch(x=method.ctx.transform(bundle.train_x[:32], train=False), y=bundle.train_y[:32],
                      index=torch.arange(32))
        losses.append(float(method.train_step(batch, 0)))
    assert losses[1] == pytest.approx(losses[0], rel=0.02)


def test_channels_last_reaches_weights_and_batches():
    method, bundle = _method("ce", ActiveSpeed(channels_last=True, device_type="cpu"))
    conv = next(m for m in method.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = method.ctx.transform(bundle.train_x[:8], train=True, generator=torch.Generator().manual_seed(0))
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert method.predict(x).shape == (8, bundle.num_classes)


def test_look_ahead_methods_stay_eager():
    eager = [name for name in METHODS.names() if not METHODS.get(name).compilable]
    assert {"mwnet", "gdw", "famus", "fsr", "dynamic_loss"} <= set(eager)
    method, _ = _method("mwnet", ActiveSpeed(compile="on", device_type="cpu"), backbone="mlp")
    assert method.ctx.speed.compile.startswith("off (eager")


def test_the_record_says_which_flags_were_active():
    record = run_trial(replace(digits_run("ce"), epochs=1, speed=SpeedSpec(deterministic=True)), TrialOptions())
    assert record["status"] == "done"
    assert record["speed"] == {"amp": False, "channels_last": False, "device_type": "cpu", "compile": "off",
                               "deterministic": True, "cudnn_benchmark": False}


class _FakeCompileError(RuntimeError):
    pass


_FakeCompileError.__module__ = "torch._dynamo.exc"  # what a real compile failure looks like


def test_a_failed_compile_falls_back_to_eager(monkeypatch):
    import bench.nn.speed

    calls = {"n": 0}

    def broken_compile(model, active):
        if active.compile == "on":
            calls["n"] += 1

            class Broken(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.inner = model

                def forward(self, x):
                    raise _FakeCompileError("inductor could not compile")

            return Broken()
        return model

    monkeypatch.setattr("methods.base.prepare_model", broken_compile)
    assert bench.nn.speed.prepare_model is not broken_compile
    record = run_trial(replace(digits_run("ce"), epochs=1, speed=SpeedSpec(compile=True)), TrialOptions())
    assert calls["n"] >= 1 and record["status"] == "done"
    assert record["speed"]["compile"].startswith("failed, ran eager: _FakeCompileError: inductor could not compile")


@pytest.mark.slow
def test_compile_trains_a_run_on_cpu():
    """The real inductor path on CPU (about 30 s of compiling on 2 cores)."""
    cfg = replace(digits_run("ce"), epochs=1, speed=SpeedSpec(compile=True))
    record = run_trial(cfg, TrialOptions())
    assert record["status"] == "done" and record["speed"]["compile"] == "on"
    eager = run_trial(replace(cfg, speed=SpeedSpec()), TrialOptions())
    assert record["summary"]["last_acc"] == pytest.approx(eager["summary"]["last_acc"], abs=2.0)
