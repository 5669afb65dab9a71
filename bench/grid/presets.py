"""Named grids. A preset expands into a list of frozen `RunConfig`s.

Seeds: seed s sets both the data seed (noisy labels, LT subset, meta split) and the train
seed (init, data order), so every method in one grid cell and seed sees bit-identical data.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.core.errors import UsageError, did_you_mean
from bench.core.registry import Registry
from bench.core.specs import OptimSpec, ScheduleSpec
from bench.nn.speed import SpeedSpec, validate_speed
from bench.train.config import RunConfig
from methods import METHODS
from methods.dividemix import DIVIDEMIX_CIFAR100
from methods.dynamic_loss import DYNAMIC_LOSS_CIFAR100
from methods.fsr import FSR_LT_NOISE
from methods.gdw import GDW_CIFAR100
from noisytail_datasets import DataSpec


@dataclass(frozen=True)
class Recipe:
    """The training recipe shared by all runs of a preset."""

    backbone: str
    epochs: int
    batch_size: int
    optim: OptimSpec = OptimSpec()
    schedule: ScheduleSpec = ScheduleSpec()


@dataclass(frozen=True)
class Preset:
    """A grid: datasets × protocol cells × methods × seeds under one recipe.

    `method_hparams` overrides a method's defaults for the whole preset; `dataset_hparams`
    (dataset → method → overrides) is applied on top for one dataset (e.g. GDW's η_ω on
    CIFAR-100). `meta_per_class` may differ by dataset (`meta_per_class_by_dataset`).
    `source` names the published table the preset mirrors.
    """

    description: str
    datasets: tuple[str, ...]
    recipe: Recipe
    noise: str
    imbalances: tuple[float, ...]
    noise_rates: tuple[float, ...]
    seeds: tuple[int, ...]
    order: str = "lt-noise"
    meta_per_class: int = 10
    meta_per_class_by_dataset: dict[str, int] = field(default_factory=dict)
    methods: tuple[str, ...] | None = None  # None: every registered method
    method_hparams: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset_hparams: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    source: str = ""
    #: extra (noise, imbalance, noise_rate) cells per dataset, beyond the noise × imbalances ×
    #: noise_rates product (e.g. asymmetric-noise columns of a table that exist for CIFAR-10 only)
    extra_cells: dict[str, tuple[tuple[str, float, float], ...]] = field(default_factory=dict)
    #: overrides for one cell, keyed "dataset/noise/rate" (e.g. "cifar10/asym/0.4") → method → dict
    cell_hparams: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def cells(self, dataset: str) -> list[tuple[str, float, float]]:
        """The (noise, imbalance, noise_rate) cells of `dataset`, in table order."""
        grid = [(self.noise, rho, rate) for rho in self.imbalances for rate in self.noise_rates]
        return grid + [c for c in self.extra_cells.get(dataset, ()) if c not in grid]

    def hparams_for(self, method: str, dataset: str, noise: str = "", rate: float | None = None) -> dict[str, Any]:
        """The overrides of `method`'s defaults in this preset on `dataset` (and in one cell)."""
        cell = self.cell_hparams.get(f"{dataset}/{noise}/{rate:g}", {}) if rate is not None else {}
        return {**self.method_hparams.get(method, {}), **self.dataset_hparams.get(dataset, {}).get(method, {}),
                **cell.get(method, {})}

    def meta_for(self, dataset: str) -> int:
        return self.meta_per_class_by_dataset.get(dataset, self.meta_per_class)


PRESETS: Registry[Preset] = Registry("preset")

#: Dynamic Loss Tables 2/3 recipe (dynamic_loss.txt §6.1, methods.md §10.4): ResNet-32, batch 512,
#: SGD 0.1 / 0.9 / 5e-4, cosine over 300 epochs after a 5-epoch linear warm-up from 0.1·lr.
DL_CIFAR_RECIPE = Recipe(
    backbone="resnet32", epochs=300, batch_size=512,
    optim=OptimSpec(lr=0.1, momentum=0.9, weight_decay=5e-4),
    schedule=ScheduleSpec(name="cosine", warmup_epochs=5, warmup_start=0.1),
)
QUICK_RECIPE = Recipe(
    backbone="mlp", epochs=3, batch_size=64,
    optim=OptimSpec(lr=0.05, momentum=0.9, weight_decay=5e-4),
)
#: Our choice for Fashion-MNIST (no paper runs it): the small CNN, 30 epochs, cosine.
FMNIST_RECIPE = Recipe(
    backbone="small_cnn", epochs=30, batch_size=128,
    optim=OptimSpec(lr=0.05, momentum=0.9, weight_decay=5e-4),
)
DL_RATES = (0.1, 0.2, 0.3, 0.4, 0.5)
DYNAMIC_LOSS_FAMILY = ("dynamic_loss", "dynamic_loss_bs", "dynamic_loss_la")
DIVIDEMIX_FAMILY = ("dividemix", "dividemix_bs")

#: FSR in the LT + noise grids: its LT+noise setting (FSR Table 7), but the re-weighting starts
#: after `meta_start_epoch` = 20 epochs (its noise default) on the 300-epoch cosine recipe, which
#: has no first LR decay for the deferred start (epoch 160 of 200) to refer to; 5 of the 30
#: Fashion-MNIST epochs.
FSR_IN_LT_NOISE_GRIDS = {**FSR_LT_NOISE, "meta_start_epoch": 20}
#: CIFAR-100 settings of the methods that have one
CIFAR100_HPARAMS = {"gdw": GDW_CIFAR100, **{m: DYNAMIC_LOSS_CIFAR100 for m in DYNAMIC_LOSS_FAMILY},
                    **{m: DIVIDEMIX_CIFAR100 for m in DIVIDEMIX_FAMILY}}
# DivideMix in the LT + noise grids keeps its uniform-prior regulariser on: the "DivideMix" row of
# DL Tables 2/3 is the official code, and `dividemix_bs` is the LT-aware baseline beside it
# (methods.md §4.3). `--hp uniform_prior=false` (run one) switches it off.

PRESETS.add("quick", Preset(
    description="smoke grid: digits, MLP, every method, rho {1,10} x sym {0,0.4}, 1 seed, 3 epochs",
    datasets=("digits",), recipe=QUICK_RECIPE, noise="sym",
    imbalances=(1, 10), noise_rates=(0.0, 0.4), seeds=(0,),
    # warm-up phases shortened so that 3 epochs reach every method's main phase
    method_hparams={"fsr": {"meta_start_epoch": 1},
                    **{m: {"warmup_epochs": 1} for m in DYNAMIC_LOSS_FAMILY + DIVIDEMIX_FAMILY}},
))
PRESETS.add("fmnist-n-lt", Preset(
    description="Dynamic Loss Table 2 protocol on Fashion-MNIST: lt-prior noise, small CNN, 3 seeds",
    datasets=("fashion-mnist",), recipe=FMNIST_RECIPE, noise="lt-prior",
    imbalances=(10, 100), noise_rates=DL_RATES, seeds=(0, 1, 2),
    method_hparams={"fsr": {**FSR_IN_LT_NOISE_GRIDS, "meta_start_epoch": 5}},
))
PRESETS.add("cifar10-n-lt", Preset(
    description="Dynamic Loss Table 2: CIFAR-10, lt-prior noise, ResNet-32, 300 epochs",
    datasets=("cifar10",), recipe=DL_CIFAR_RECIPE, noise="lt-prior",
    imbalances=(10, 100), noise_rates=DL_RATES, seeds=(0, 1, 2),
    method_hparams={"fsr": FSR_IN_LT_NOISE_GRIDS},
))
PRESETS.add("cifar100-n-lt", Preset(
    description="Dynamic Loss Table 3: CIFAR-100, lt-prior noise, ResNet-32, 300 epochs",
    datasets=("cifar100",), recipe=DL_CIFAR_RECIPE, noise="lt-prior",
    imbalances=(10, 100), noise_rates=DL_RATES, seeds=(0, 1, 2),
    method_hparams={"fsr": FSR_IN_LT_NOISE_GRIDS}, dataset_hparams={"cifar100": CIFAR100_HPARAMS},
))

#: the recipe `bench run one` uses for a dataset unless told otherwise
DEFAULT_RECIPES: dict[str, Recipe] = {
    "digits": QUICK_RECIPE,
    "fashion-mnist": FMNIST_RECIPE,
    "cifar10": DL_CIFAR_RECIPE,
    "cifar100": DL_CIFAR_RECIPE,
}


def resolve_hparams(method: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The method's defaults with `overrides` applied; unknown keys are a UsageError."""
    defaults = METHODS.get(method).defaults
    overrides = overrides or {}
    for key in overrides:
        if key not in defaults:
            known = ", ".join(sorted(defaults)) or "none"
            raise UsageError(
                f"method '{method}' has no hyperparameter '{key}'{did_you_mean(key, defaults)}; "
                f"its hyperparameters: {known}"
            )
    return {**defaults, **overrides}


def make_run(
    data: DataSpec, method: str, recipe: Recipe, seed: int, epochs: int | None = None,
    hparams: dict[str, Any] | None = None, preset: str = "", speed: SpeedSpec = SpeedSpec(),
) -> RunConfig:
    """One validated, fully resolved run."""
    data.validate()
    validate_speed(speed)
    return RunConfig(
        data=data, method=method, backbone=recipe.backbone,
        epochs=epochs if epochs is not None else recipe.epochs,
        batch_size=recipe.batch_size, seed=seed, optim=recipe.optim, schedule=recipe.schedule,
        hparams=resolve_hparams(method, hparams), preset=preset, speed=speed,
    )


def expand(
    name: str, methods: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
    epochs: int | None = None, speed: SpeedSpec = SpeedSpec(),
) -> list[RunConfig]:
    """Every run of preset `name`, ordered cell by cell so methods of one cell run together."""
    preset = PRESETS.get(name)
    chosen = list(methods) if methods else list(preset.methods or METHODS.names())
    for m in chosen:
        METHODS.get(m)
    if epochs is not None and epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {epochs}")
    runs = []
    for dataset in preset.datasets:
        for seed in seeds if seeds is not None else preset.seeds:
            for noise, imbalance, rate in preset.cells(dataset):
                data = DataSpec(
                    dataset=dataset, imbalance=imbalance, noise=noise, noise_rate=rate,
                    order=preset.order, meta_per_class=preset.meta_for(dataset), data_seed=seed,
                )
                for m in chosen:
                    runs.append(make_run(data, m, preset.recipe, seed, epochs,
                                         preset.hparams_for(m, dataset, noise, rate), preset=name, speed=speed))
    return runs


def describe_recipe(cfg: RunConfig) -> str:
    """One line with everything of a run's recipe: backbone, epochs, batch, optimiser, schedule,
    meta set and the hyperparameters that differ from the method's defaults."""
    o, s, d = cfg.optim, cfg.schedule, cfg.data
    opt = f"sgd lr={o.lr:g} mom={o.momentum:g} wd={o.weight_decay:g}" + (" nesterov" if o.nesterov else "")
    sched = s.name
    if s.name == "multistep":
        sched += f" {list(s.milestones)}x{s.gamma:g}"
    elif s.name == "cosine-restarts":
        sched += f" cycle={s.cycle_epochs:g}ep x{s.cycle_mult:g} peak x{s.cycle_decay:g}"
    if s.warmup_epochs:
        sched += f" +{s.warmup_epochs}ep warm-up from {s.warmup_start:g}"
    defaults = METHODS.get(cfg.method).defaults
    changed = {k: v for k, v in cfg.hparams.items() if defaults.get(k) != v}
    hp = " ".join(f"{k}={v}" for k, v in changed.items()) or "defaults"
    return (f"{cfg.backbone} {cfg.epochs}ep batch={cfg.batch_size} {opt} {sched} | "
            f"{d.order} meta={d.meta_per_class}/class | {hp}")


# The presets that mirror published tables register themselves on import (they use the names
# defined above, hence the import at the end).
from bench.grid.papers import _old_paper_presets  # noqa: E402,F401
