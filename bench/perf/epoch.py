"""`bench perf --epoch`: one epoch of a method with its own epoch structure on real data, against
a baseline epoch and the method's own cost model.

Some methods' cost is per epoch, not per step (DivideMix: a co-divide of one inference pass over
the training set and one GMM fit per net, then its own loop of MixMatch iterations). Such a
method declares its epoch as a sum of parts (`Method.epoch_cost_model`). This mode trains the
warm-up, times the next epoch end to end as the engine runs it, times a baseline epoch on the
same data and backbone, and times each part on its own to build

    model = Σ_parts count × seconds of one

`measured / model` close to 1 means the epoch does nothing beyond the algorithm's own work.
"""
from __future__ import annotations

from typing import Any

import torch

from bench.core.errors import UsageError
from bench.grid.presets import DEFAULT_RECIPES, make_run
from bench.train import timing
from bench.train.config import RunConfig
from bench.train.engine import build_method, train_one_epoch
from bench.train.envinfo import resolve_device
from bench.train.schedules import lr_at
from bench.train.stream import BatchStream
from methods import METHODS, Method
from noisytail_datasets import DataSpec, build_data


def with_cost_model() -> list[str]:
    """The registered methods that declare an epoch cost model, in listing order."""
    return [m for m in METHODS.names() if METHODS.get(m).epoch_cost_model is not Method.epoch_cost_model]


def _epoch_seconds(method: Method, stream: BatchStream, epoch: int, cfg: RunConfig) -> float:
    """Wall-clock of one engine epoch: on_epoch_start + train_epoch, as the engine times it."""
    method.set_lr(lr_at(cfg.schedule, cfg.optim.lr, epoch, cfg.epochs))
    dev = method.ctx.device
    t0 = timing.now(dev)
    train_one_epoch(method, stream, epoch).item()
    return timing.now(dev) - t0


def _median_seconds(fn: Any, repeats: int, dev: torch.device) -> float:
    samples = []
    for _ in range(repeats):
        t0 = timing.now(dev)
        fn()
        samples.append(timing.now(dev) - t0)
    return timing.median(samples)


def _chosen(method: str | None) -> str:
    candidates = with_cost_model()
    if method is None and candidates:
        return candidates[0]
    if method is not None and method in candidates:
        return method
    METHODS.get(method or "")  # an unknown name: "did you mean"
    names = ", ".join(f"{METHODS.display_name(m)} ({m})" for m in candidates) or "none"
    raise UsageError(f"--epoch times a method whose epoch has its own structure; '{method}' declares no epoch cost "
                     f"model (methods that do: {names})")


def run_epoch_perf(
    method: str | None = None, dataset: str = "fashion-mnist", backbone: str | None = None,
    imbalance: float = 1, noise: str = "sym", noise_rate: float = 0.4, warmup_epochs: int = 1,
    device: str = "cpu", data_root: str | None = None, seed: int = 0, step_repeats: int = 10,
) -> dict[str, Any]:
    """Measured and modelled seconds of one post-warm-up epoch of `method` (default: the first
    method that declares an epoch cost model)."""
    method = _chosen(method)
    method_cls, baseline = METHODS.get(method), METHODS.baseline()
    dev = resolve_device(device)
    recipe = DEFAULT_RECIPES.get(dataset)
    data = DataSpec(dataset=dataset, imbalance=imbalance, noise=noise, noise_rate=noise_rate,
                    meta_per_class=0, data_seed=seed)
    epochs = warmup_epochs + 1
    warmup = {method_cls.main_phase_from: warmup_epochs} if method_cls.main_phase_from else {}
    runs = {
        name: make_run(data, name, recipe, seed, epochs, hp).with_(backbone=backbone or recipe.backbone)
        for name, hp in ((baseline, None), (method, warmup))
    }
    bundle = build_data(data, device=dev, data_root=data_root)

    def build(name: str) -> tuple[Method, BatchStream]:
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        m = build_method(runs[name], bundle, dev, gen)
        return m, BatchStream(bundle.train_x, bundle.train_y, runs[name].batch_size, m.ctx.transform, gen,
                              with_index=type(m).uses_indices)

    base, base_stream = build(baseline)
    base_epoch = _epoch_seconds(base, base_stream, 0, runs[baseline])
    timed, timed_stream = build(method)
    for epoch in range(warmup_epochs):
        _epoch_seconds(timed, timed_stream, epoch, runs[method])
    measured = _epoch_seconds(timed, timed_stream, warmup_epochs, runs[method])
    try:
        cost = timed.epoch_cost_model(warmup_epochs)
    except ValueError as exc:
        raise UsageError(f"{method}: {exc}") from None
    parts = {part.name: (part.count, _median_seconds(part.run, step_repeats if part.count > 2 else 2, dev))
             for part in cost.parts}
    model = sum(count * seconds for count, seconds in parts.values())
    return {
        "method": method, "dataset": dataset, "backbone": runs[method].backbone, "noise": noise,
        "noise_rate": noise_rate, "imbalance": imbalance, "train_size": len(bundle.train_y), "baseline": baseline,
        "ce_epoch_s": base_epoch, "epoch_s": measured, "ratio_to_ce": measured / base_epoch,
        **cost.details, "details": cost.details, **{f"{name}_s": seconds for name, (_, seconds) in parts.items()},
        "parts": [{"name": name, "count": count, "seconds": seconds} for name, (count, seconds) in parts.items()],
        "model_s": model, "measured_over_model": measured / model, "device": str(dev),
    }


def format_epoch_perf(r: dict[str, Any]) -> str:
    """The `run_epoch_perf` result as a few aligned lines."""
    parts = " + ".join(f"{p['count']} x {p['seconds'] * 1e3:.1f} ms {p['name']}" for p in r["parts"])
    details = "; ".join(f"{k} {_short(v)}" for k, v in r["details"].items())
    return "\n".join([
        f"{r['method']} on {r['dataset']} ({r['backbone']}, {r['noise']} {r['noise_rate']:g}, rho={r['imbalance']:g}, "
        f"{r['train_size']} images, {r['device']})",
        f"  {r['baseline'] + ' epoch':<20}{r['ce_epoch_s']:8.2f} s",
        f"  measured epoch      {r['epoch_s']:8.2f} s   = {r['ratio_to_ce']:.2f} x {r['baseline']}",
        f"  cost model          {r['model_s']:8.2f} s   = {parts}",
        f"  measured / model    {r['measured_over_model']:8.2f}",
        *([f"  ({details})"] if details else []),
    ])


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)
