"""`bench perf --epoch`: one DivideMix epoch on real data, against a CE epoch and a cost model.

DivideMix's cost is per epoch, not per step: the co-divide (one inference pass over the
training set and one GMM fit per net) and |labeled| / 64 MixMatch iterations per net. This
mode trains the warm-up, times the next epoch end to end (co-divide included), times a CE
epoch on the same data and backbone, and times the parts on their own to build

    model = Σ_nets ceil(|labeled| / 64) × one MixMatch step + 2 inference passes + 2 GMM fits

`measured / model` close to 1 means the epoch does nothing beyond the algorithm's own work.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from bench.core.errors import UsageError
from bench.grid.presets import DEFAULT_RECIPES, make_run
from bench.train import timing
from bench.train.engine import build_method, train_one_epoch
from bench.train.envinfo import resolve_device
from bench.train.schedules import lr_at
from bench.train.stream import BatchStream
from methods import METHODS, Method
from methods.dividemix import DivideMix, gmm_clean_probability, normalise_losses
from noisytail_datasets import DataSpec, build_data


def _epoch_seconds(method: Method, stream: BatchStream, epoch: int, cfg: Any) -> float:
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


def run_epoch_perf(
    method: str = "dividemix", dataset: str = "fashion-mnist", backbone: str | None = None,
    imbalance: float = 1, noise: str = "sym", noise_rate: float = 0.4, warmup_epochs: int = 1,
    device: str = "cpu", data_root: str | None = None, seed: int = 0, step_repeats: int = 10,
) -> dict[str, Any]:
    """Measured and modelled seconds of one post-warm-up epoch of a DivideMix-family method."""
    if not issubclass(METHODS.get(method), DivideMix):
        raise UsageError(f"--epoch mode models DivideMix's epoch; '{method}' is not a DivideMix method")
    dev = resolve_device(device)
    recipe = DEFAULT_RECIPES[dataset]
    data = DataSpec(dataset=dataset, imbalance=imbalance, noise=noise, noise_rate=noise_rate,
                    meta_per_class=0, data_seed=seed)
    epochs = warmup_epochs + 1
    runs = {
        name: make_run(data, name, recipe, seed, epochs, hp).with_(backbone=backbone or recipe.backbone)
        for name, hp in (("ce", None), (method, {"warmup_epochs": warmup_epochs}))
    }
    bundle = build_data(data, device=dev, data_root=data_root)

    def build(name: str) -> tuple[Method, BatchStream]:
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        m = build_method(runs[name], bundle, dev, gen)
        return m, BatchStream(bundle.train_x, bundle.train_y, runs[name].batch_size, m.ctx.transform, gen,
                              with_index=type(m).uses_indices)

    ce, ce_stream = build("ce")
    ce_epoch = _epoch_seconds(ce, ce_stream, 0, runs["ce"])
    dm, dm_stream = build(method)
    assert isinstance(dm, DivideMix)
    for epoch in range(warmup_epochs):
        _epoch_seconds(dm, dm_stream, epoch, runs[method])
    measured = _epoch_seconds(dm, dm_stream, warmup_epochs, runs[method])
    splits = [dm.split(k) for k in (0, 1)]
    labeled = [len(s[0]) for s in splits]
    bs = dm.hp["mix_batch_size"]
    iterations = sum(math.ceil(n / bs) for n in labeled)

    # the parts, each timed on its own
    inference = _median_seconds(lambda: dm.per_sample_losses(dm.model), 2, dev)
    losses = normalise_losses(dm.per_sample_losses(dm.model))
    gmm = _median_seconds(lambda: gmm_clean_probability(losses, dm.hp["gmm_seed"]), 3, dev)
    x_index, w, u_index = splits[0][0][:bs], splits[0][1][:bs], splits[0][2][:bs]
    if len(x_index) == 0 or len(u_index) == 0:
        raise UsageError("the co-divide left an empty labeled or unlabeled set; try more warm-up epochs")
    step = _median_seconds(lambda: dm.mixmatch_step(0, x_index, w, u_index, float(warmup_epochs)), step_repeats, dev)
    model = iterations * step + 2 * inference + 2 * gmm
    return {
        "method": method, "dataset": dataset, "backbone": runs[method].backbone, "noise": noise,
        "noise_rate": noise_rate, "imbalance": imbalance, "train_size": len(bundle.train_y),
        "ce_epoch_s": ce_epoch, "epoch_s": measured, "ratio_to_ce": measured / ce_epoch,
        "labeled_fraction": [n / len(bundle.train_y) for n in labeled], "iterations": iterations,
        "mixmatch_step_s": step, "inference_pass_s": inference, "gmm_fit_s": gmm,
        "model_s": model, "measured_over_model": measured / model, "device": str(dev),
    }


def format_epoch_perf(r: dict[str, Any]) -> str:
    """The `run_epoch_perf` result as a few aligned lines."""
    frac = ", ".join(f"{f:.2f}" for f in r["labeled_fraction"])
    return "\n".join([
        f"{r['method']} on {r['dataset']} ({r['backbone']}, {r['noise']} {r['noise_rate']:g}, rho={r['imbalance']:g}, "
        f"{r['train_size']} images, {r['device']})",
        f"  CE epoch            {r['ce_epoch_s']:8.2f} s",
        f"  measured epoch      {r['epoch_s']:8.2f} s   = {r['ratio_to_ce']:.2f} x CE   (labeled fraction {frac})",
        f"  cost model          {r['model_s']:8.2f} s   = {r['iterations']} x {r['mixmatch_step_s'] * 1e3:.1f} ms MixMatch"
        f" + 2 x {r['inference_pass_s']:.2f} s inference + 2 x {r['gmm_fit_s']:.3f} s GMM",
        f"  measured / model    {r['measured_over_model']:8.2f}",
    ])
