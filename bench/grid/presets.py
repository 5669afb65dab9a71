"""Named grids. A preset expands into a list of frozen `RunConfig`s.

Seeds: seed s sets both the data seed (noisy labels, LT subset, meta split) and the train
seed (init, data order), so every method in one grid cell and seed sees bit-identical data.

A run's hyperparameters are resolved in one order everywhere (`make_run`): the method's
defaults, its defaults for the run's dataset, the preset's overrides for the method, the dataset
and the cell, its short-run overrides when the preset or the user (`--short-run`) asks for them,
then the user's own.
Every value is checked against the method's rules here, when the grid is planned.

An ablation row of a paper's table is a *variant*: a registered method run with fixed hyperparameter
overrides under a name of its own (`Variant`, `VARIANTS`). A preset lists it in `variants`, beside
its `methods` (`--methods` may name either); its runs record the registered method and the resolved
hyperparameters (so the run id differs from the plain method's), and `analysis.results` names them
by the variant again.

This module holds the machinery and the generic `quick` grid; the presets that mirror a paper
live in `bench.grid.papers`, one module per paper.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bench.core.errors import UsageError, unknown
from bench.core.registry import Registry
from bench.core.specs import OptimSpec, ScheduleSpec
from bench.nn.backbones import check_pretrained
from bench.nn.speed import SpeedSpec, validate_speed
from bench.train.config import LATER_DATA_FIELDS, RunConfig
from methods import METHODS
from noisytail_datasets import DATASETS, DataSpec


@dataclass(frozen=True)
class Recipe:
    """The training recipe shared by all runs of a preset."""

    backbone: str
    epochs: int
    batch_size: int
    optim: OptimSpec = OptimSpec()
    schedule: ScheduleSpec = ScheduleSpec()
    #: the backbone's starting weights (`bench.nn.backbones.PRETRAINED_WEIGHTS`, e.g. "imagenet1k_v1"); "": random
    pretrained: str = ""
    #: training samples drawn afresh each epoch, class-balanced by noisy label (`RunConfig.epoch_samples`;
    #: the Clothing1M recipes' per-epoch subsampling); 0: the whole training set
    epoch_samples: int = 0


@dataclass(frozen=True)
class Variant:
    """A registered method with fixed hyperparameter overrides, run and shown as a row of its own
    (an ablation row such as "FaMUS without L_r"). The overrides apply after the preset's own
    overrides of `method` and before the short-run ones; they must change the resolved
    hyperparameters (else its runs would be the plain method's)."""

    method: str
    hparams: Mapping[str, Any]
    display_name: str  # how tables print the row
    description: str = ""


#: ablation variants by name (e.g. "famus-no-lr"); registered by the paper modules
VARIANTS: Registry[Variant] = Registry("method variant")


def add_variant(name: str, variant: Variant) -> None:
    """Register `variant` under `name` (checked: a known method, overrides within its rules that
    change its defaults)."""
    if name in METHODS:
        raise ValueError(f"variant '{name}' would hide the method of that name")
    method = METHODS.get(variant.method)
    resolved = method.resolve_hparams(dict(variant.hparams))
    if all(method.resolve_hparams({}).get(k) == resolved[k] for k in variant.hparams):
        raise ValueError(f"variant '{name}' does not change any of {variant.method}'s defaults")
    VARIANTS.add(name, variant, variant.description or f"{variant.method} with {dict(variant.hparams)}")


def base_method(name: str) -> str:
    """The registered method that runs `name` (a method or a variant); a UsageError for neither."""
    if name in VARIANTS:
        return VARIANTS.get(name).method
    METHODS.get(name)
    return name


@dataclass(frozen=True)
class Preset:
    """A grid: datasets × protocol cells × methods × seeds under one recipe.

    `method_hparams` overrides a method's defaults for the whole preset; `dataset_hparams`
    (dataset → method → overrides) is applied on top for one dataset, and `cell_hparams` for one
    cell. `short_run` applies each method's own short-run overrides (`Method.short_run`) last,
    so that a grid of a few epochs reaches every method's main phase. `meta_per_class` may
    differ by dataset (`meta_per_class_by_dataset`). `source` names the published table the
    preset mirrors. `variants` names ablation variants (`VARIANTS`) run beside `methods`: each
    runs its method with the preset's overrides of that method, then its own.

    `backbones` (a backbone sweep, e.g. Dynamic Loss Table 8, whose columns are backbones) runs
    every cell once per backbone, the recipe otherwise unchanged; empty: the recipe's backbone.
    `image_size` is the crop size of a streamed dataset (0: the dataset's own, e.g. 299 for
    mini-WebVision; FSR trains ResNet-50 on it at 224).
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
    short_run: bool = False
    #: the data protocol's image pipeline and noise sampling, as the paper's code has them
    #: (`DataSpec.pad_mode`, `normalisation`, `noise_sampling`)
    pad_mode: str = "constant"
    normalisation: str = "dataset"
    noise_sampling: str = "independent"
    #: ablation variants (`VARIANTS`) run beside `methods`, each a row of its own in the tables
    variants: tuple[str, ...] = ()
    #: run every cell once per backbone (a sweep; see the class doc); empty: the recipe's backbone
    backbones: tuple[str, ...] = ()
    #: crop size of a streamed dataset's images (`DataSpec.image_size`; 0: the dataset's own)
    image_size: int = 0
    #: cap on the head class before the long-tail cut (`DataSpec.max_per_class`; 0: none, the papers' protocol)
    max_per_class: int = 0

    def cells(self, dataset: str) -> list[tuple[str, float, float]]:
        """The (noise, imbalance, noise_rate) cells of `dataset`, in table order."""
        grid = [(self.noise, rho, rate) for rho in self.imbalances for rate in self.noise_rates]
        return grid + [c for c in self.extra_cells.get(dataset, ()) if c not in grid]

    def hparams_for(self, method: str, dataset: str, noise: str = "", rate: float | None = None,
                    short_run: bool = False) -> dict[str, Any]:
        """The preset's overrides of `method`'s defaults on `dataset` (and in one cell), then a
        variant's own overrides (`method` may name a variant: the preset's overrides of its
        method apply to it), then the method's short-run overrides when the preset or
        `short_run` asks for them."""
        base = base_method(method)
        own = dict(VARIANTS.get(method).hparams) if method != base else {}
        cell = self.cell_hparams.get(f"{dataset}/{noise}/{rate:g}", {}) if rate is not None else {}
        short = METHODS.get(base).short_run if self.short_run or short_run else {}
        return {**self.method_hparams.get(base, {}), **self.dataset_hparams.get(dataset, {}).get(base, {}),
                **cell.get(base, {}), **own, **short}

    def backbone_list(self) -> tuple[str, ...]:
        """The backbones the preset runs: its sweep, else the recipe's."""
        return self.backbones or (self.recipe.backbone,)

    def meta_for(self, dataset: str) -> int:
        return self.meta_per_class_by_dataset.get(dataset, self.meta_per_class)


PRESETS: Registry[Preset] = Registry("preset")
#: the recipe `bench run one` uses for a dataset unless told otherwise (registered by the module
#: that defines the recipe)
DEFAULT_RECIPES: Registry[Recipe] = Registry("dataset recipe")

QUICK_RECIPE = Recipe(
    backbone="mlp", epochs=3, batch_size=64,
    optim=OptimSpec(lr=0.05, momentum=0.9, weight_decay=5e-4),
)
DEFAULT_RECIPES.add("digits", QUICK_RECIPE)
#: the first run a user makes (`run grid` without --preset): long enough for every method's main phase
DEFAULT_RUN_RECIPE = Recipe(
    backbone="mlp", epochs=20, batch_size=64,
    optim=OptimSpec(lr=0.05, momentum=0.9, weight_decay=5e-4),
)


def scaled_warm_ups(epochs: int, fraction: float = 0.25) -> dict[str, dict[str, int]]:
    """Every method with a warm-up (`main_phase_from`) starting its main phase after `fraction` of a run of
    `epochs` (recorded in each run's hyperparameters, so in its id)."""
    return {name: {METHODS.get(name).main_phase_from: int(epochs * fraction)} for name in METHODS.names()
            if METHODS.get(name).main_phase_from}


PRESETS.add("default", Preset(
    description="the first run: digits, MLP, every default method, 20 epochs (warm-ups 5), 3 seeds, three cells that "
                "show the two problems apart: long tail alone (rho 10, clean), noise alone (rho 1, sym 0.4), both",
    datasets=("digits",), recipe=DEFAULT_RUN_RECIPE, noise="sym",
    imbalances=(10,), noise_rates=(0.0, 0.4), extra_cells={"digits": (("sym", 1, 0.4),)}, seeds=(0, 1, 2),
    method_hparams=scaled_warm_ups(DEFAULT_RUN_RECIPE.epochs),
))
PRESETS.add("quick", Preset(
    description="smoke grid: digits, MLP, every default method, rho {1,10} x sym {0,0.4}, 1 seed, 3 epochs",
    datasets=("digits",), recipe=QUICK_RECIPE, noise="sym",
    imbalances=(1, 10), noise_rates=(0.0, 0.4), seeds=(0,),
    short_run=True,  # warm-up phases shortened so that 3 epochs reach every method's main phase
))


def resolve_hparams(method: str, overrides: Mapping[str, Any] | None = None, dataset: str | None = None
                    ) -> dict[str, Any]:
    """The method's defaults (and its defaults on `dataset`) with `overrides` applied, checked:
    an unknown key or a value outside the method's rules is a UsageError."""
    return METHODS.get(method).resolve_hparams(overrides, dataset=dataset)


def make_run(
    data: DataSpec, method: str, recipe: Recipe, seed: int, epochs: int | None = None,
    hparams: Mapping[str, Any] | None = None, preset: str = "", speed: SpeedSpec = SpeedSpec(),
) -> RunConfig:
    """One validated, fully resolved run."""
    data.validate()
    validate_speed(speed)
    epochs = epochs if epochs is not None else recipe.epochs
    resolved = resolve_hparams(method, hparams, dataset=data.dataset)
    method_cls = METHODS.get(method)
    method_cls.check_run(resolved, epochs)
    method_cls.check_meta_set(data.meta_per_class)
    method_cls.check_epoch_samples(recipe.epoch_samples)
    if recipe.pretrained:
        check_pretrained(recipe.backbone, recipe.pretrained, DATASETS.get(data.dataset).in_channels)
    return RunConfig(
        data=data, method=method, backbone=recipe.backbone, epochs=epochs,
        batch_size=recipe.batch_size, seed=seed, optim=recipe.optim, schedule=recipe.schedule,
        hparams=resolved, preset=preset, speed=speed, pretrained=recipe.pretrained,
        epoch_samples=recipe.epoch_samples,
    )


def expand(
    name: str, methods: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
    epochs: int | None = None, speed: SpeedSpec = SpeedSpec(), short_run: bool = False,
) -> list[RunConfig]:
    """Every run of preset `name`, ordered cell by cell so methods of one cell run together
    (`short_run`: with each method's short-run overrides, as a `short_run` preset has). `methods`
    may name methods and ablation variants; by default the preset's methods, then its variants."""
    preset = PRESETS.get(name)
    chosen = list(methods) if methods else [*(preset.methods or METHODS.default_names()), *preset.variants]
    for m in chosen:
        base_method(m)  # a method or an ablation variant
    if epochs is not None and epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {epochs}")
    recipes = [replace(preset.recipe, backbone=b) for b in preset.backbone_list()]
    runs = []
    for dataset in preset.datasets:
        for seed in seeds if seeds is not None else preset.seeds:
            for noise, imbalance, rate in preset.cells(dataset):
                data = DataSpec(
                    dataset=dataset, imbalance=imbalance, noise=noise, noise_rate=rate,
                    order=preset.order, meta_per_class=preset.meta_for(dataset), data_seed=seed,
                    pad_mode=preset.pad_mode, normalisation=preset.normalisation,
                    noise_sampling=preset.noise_sampling, image_size=preset.image_size,
                    max_per_class=preset.max_per_class,
                )
                for recipe in recipes:
                    for m in chosen:
                        runs.append(make_run(data, base_method(m), recipe, seed, epochs,
                                             preset.hparams_for(m, dataset, noise, rate, short_run), preset=name,
                                             speed=speed))
    return runs


def cell_text(cfg: RunConfig) -> str:
    """A run's cell as DATASET:RHO:NOISE:RATE (the form `--cell` takes)."""
    d = cfg.data
    return f"{d.dataset}:{d.imbalance:g}:{d.noise}:{d.noise_rate:g}"


def select_cells(runs: list[RunConfig], cells: Sequence[str] | None, preset: str) -> list[RunConfig]:
    """The runs on the given cells (None: all); a UsageError names a cell the preset does not have."""
    if not cells:
        return runs
    present = {cell_text(cfg) for cfg in runs}
    for cell in cells:
        if cell not in present:
            raise unknown(f"cell of preset '{preset}'", cell, sorted(present))
    return [cfg for cfg in runs if cell_text(cfg) in cells]


def short_run_overrides(methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each method's short-run overrides (methods without any left out), for printing; a variant
    counts as its method."""
    bases = dict.fromkeys(base_method(m) for m in methods)
    return {m: dict(METHODS.get(m).short_run) for m in bases if METHODS.get(m).short_run}


def describe_recipe(cfg: RunConfig) -> str:
    """One line with everything of a run's recipe: backbone (and its pretrained weights), epochs, batch,
    optimiser, schedule, meta set and the hyperparameters that differ from the method's defaults."""
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
    data = f"{d.order} meta={d.meta_per_class}/class"
    for name, default in LATER_DATA_FIELDS.items():  # the image pipeline and noise sampling, when chosen
        if getattr(d, name) != default:
            data += f" {name}={getattr(d, name)}"
    backbone = cfg.backbone + (f" pretrained={cfg.pretrained}" if cfg.pretrained else "")
    epochs = f"{cfg.epochs}ep" + (f" of {cfg.epoch_samples} balanced samples" if cfg.epoch_samples else "")
    return f"{backbone} {epochs} batch={cfg.batch_size} {opt} {sched} | {data} | {hp}"
