"""Shared builders for the tests."""
from __future__ import annotations

from bench.config import OptimSpec, RunConfig, ScheduleSpec
from bench.presets import resolve_hparams
from noisytail_datasets import DataSpec


def digits_run(method: str = "ce", epochs: int = 2, lr: float = 0.05, **data) -> RunConfig:
    """A tiny, fast run: digits, MLP, rho=10, 40% symmetric noise unless overridden."""
    spec = {"dataset": "digits", "imbalance": 10, "noise": "sym", "noise_rate": 0.4, **data}
    return RunConfig(
        data=DataSpec(**spec), method=method, backbone="mlp", epochs=epochs, batch_size=64, seed=0,
        optim=OptimSpec(lr=lr), schedule=ScheduleSpec(name="cosine"), hparams=resolve_hparams(method),
    )
