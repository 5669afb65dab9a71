"""The method interface the engine drives (the DomainBed pattern: the harness owns the loop).

A method owns its networks and optimisers. The engine calls, per epoch: `set_lr`,
`on_epoch_start`, `train_epoch` (default: `train_step` over the batches), and `predict` for
evaluation. What a method may read is explicit: `MethodContext` carries the noisy training
labels and class counts, the trusted meta set only for methods that declare
`uses_meta_set = True`, and never the clean labels (only `Diagnostics` can score against them).

Everything about a method is declared on its class, next to its code (the timm pattern): its
hyperparameter defaults and the rules their values must follow, per-dataset defaults, the
overrides a short run needs, and how listings, tables and plots show it (`display_name`,
`colour`, `order`, `family`, `is_baseline`). Nothing outside the method's module names it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from bench.core import hparams as hparam_rules
from bench.core.errors import UsageError
from bench.core.hparams import Rule
from bench.core.search import Dim
from bench.core.specs import OptimSpec
from bench.nn.speed import ActiveSpeed, prepare_model


@dataclass
class Batch:
    """One training batch: augmented, normalised images, noisy labels, and the samples' indices
    into the training set (None unless the method declares `uses_indices`)."""

    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor | None = None


class Diagnostics:
    """The only door to the clean labels: methods submit guesses and get back a score.

    Recorded values become extra columns of the per-epoch table. With `clean_labels_known` False
    (real noise whose clean labels were never released) there is nothing to score against: every
    score is NaN, never a comparison with the noisy labels.
    """

    def __init__(self, true_labels: torch.Tensor, clean_labels_known: bool = True) -> None:
        self._true = true_labels
        self.clean_labels_known = clean_labels_known
        self.values: dict[str, float] = {}

    def label_accuracy(self, index: torch.Tensor, labels: torch.Tensor) -> float:
        """Percentage of `labels` (for training samples `index`) that equal the clean labels
        (NaN when none are given or the clean labels are unknown)."""
        if index.numel() == 0 or not self.clean_labels_known:
            return float("nan")
        return float((self._true[index] == labels).float().mean().item() * 100.0)

    def mean_by_label(self, index: torch.Tensor, labels: torch.Tensor, values: torch.Tensor) -> tuple[float, float]:
        """Mean of `values` over the training samples `index` whose given `labels` are clean, and over
        those whose labels are noisy (NaN for a group with no sample, or when the clean labels are unknown)."""
        if index.numel() == 0 or not self.clean_labels_known:
            return float("nan"), float("nan")
        clean = self._true[index] == labels

        def mean(mask: torch.Tensor) -> float:
            return float(values[mask].double().mean().item()) if mask.any() else float("nan")

        return mean(clean), mean(~clean)

    def record(self, name: str, value: float) -> None:
        self.values[name] = float(value)

    def pop(self) -> dict[str, float]:
        values, self.values = self.values, {}
        return values


class Images(Protocol):
    """The images of one split as a method reads them, whichever data path the run takes.

    On the device-resident path (`TensorImages`) they are uint8 tensors on the device, gathered
    and augmented in one batched call; on the streaming path (`noisytail_datasets.streaming`) they
    are files decoded and augmented off the training thread. Either way a method asks for images
    by training-set index and gets normalised float32 batches on the run's device.
    """

    def __len__(self) -> int: ...

    def batch(self, index: torch.Tensor, train: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        """The images `index`, augmented (train) or evaluation-transformed, as one batch."""

    def subset(self, index: torch.Tensor) -> "Images":
        """The images `index` as an `Images` of their own (e.g. a meta set drawn from the training set)."""

    def in_order(self, batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
        """(start, evaluation-transformed batch) over all images in order: a per-sample pass."""

    def iterate(self, batches: list[torch.Tensor], train: bool,
                generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
        """The images of each index batch in turn (the streaming path prefetches ahead)."""


class TensorImages:
    """`Images` held as one uint8 N×C×H×W tensor on the device (the fast path for CIFAR-sized data)."""

    def __init__(self, x: torch.Tensor, transform: Callable[..., torch.Tensor]) -> None:
        self.x, self.transform = x, transform

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, index: torch.Tensor, train: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.transform(self.x[index.to(self.x.device)], train=train, generator=generator)

    def subset(self, index: torch.Tensor) -> "TensorImages":
        return TensorImages(self.x[index.to(self.x.device)], self.transform)

    def in_order(self, batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
        for start in range(0, len(self.x), batch_size):
            yield start, self.transform(self.x[start : start + batch_size], train=False)

    def iterate(self, batches: list[torch.Tensor], train: bool,
                generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
        for index in batches:  # lazily: each batch is augmented only when it is asked for
            yield self.batch(index, train=train, generator=generator)


class Batches(Protocol):
    """What `Method.train_epoch` receives: the epoch's shuffled batches, timed per iteration."""

    def __iter__(self) -> Iterator[Batch]: ...

    def lap(self) -> None:
        """Mark the end of one iteration that drew no batch (a method running its own loop)."""


@dataclass(frozen=True)
class CostPart:
    """One kind of work in a method's epoch: `count` repetitions of `run`, which `bench perf
    --epoch` times on its own."""

    name: str
    count: int
    run: Callable[[], object]


@dataclass
class EpochCostModel:
    """A method's epoch as a sum of parts (its own loop, passes, fits), and facts about it."""

    parts: list[CostPart]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodContext:
    """What the harness hands to a method at construction."""

    num_classes: int
    in_channels: int
    image_size: int
    epochs: int
    batch_size: int
    steps_per_epoch: int
    device: torch.device
    optim: OptimSpec
    train_y: torch.Tensor  # noisy labels of the training set
    noisy_counts: list[int]
    model_factory: Callable[[], nn.Module]
    transform: Callable[..., torch.Tensor]
    generator: torch.Generator
    diagnostics: Diagnostics
    meta_x: torch.Tensor | None = None
    meta_y: torch.Tensor | None = None
    #: the training images (uint8, un-augmented, aligned with train_y) on the device-resident path
    train_x: torch.Tensor | None = None
    #: the speed settings in force (bf16 autocast, channels-last, compile); all off by default
    speed: ActiveSpeed = field(default_factory=ActiveSpeed)
    #: the training images as methods read them (default: `train_x` through `transform`); on the
    #: streaming path the only access, `train_x` being None
    train_images: Images | None = None
    #: the trusted meta set's images (default: `meta_x` through `transform`), for methods that declare it
    meta_images: Images | None = None

    def __post_init__(self) -> None:
        if self.train_images is None and self.train_x is not None:
            self.train_images = TensorImages(self.train_x, self.transform)
        if self.meta_images is None and self.meta_x is not None:
            self.meta_images = TensorImages(self.meta_x, self.transform)

    def build_model(self) -> nn.Module:
        """A freshly initialised backbone on the run's device (channels-last / compiled when active)."""
        return prepare_model(self.model_factory().to(self.device), self.speed)

    def build_optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.SGD:
        """The classifier's SGD as the run's recipe specifies it."""
        o = self.optim
        return torch.optim.SGD(
            params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=o.nesterov
        )


class Method:
    """Base class: one backbone, one SGD optimiser, a per-sample loss in `loss`."""

    # --- what the method is ----------------------------------------------------------------
    #: default hyperparameters, the single place they are defined
    defaults: ClassVar[dict[str, Any]] = {}
    #: the values a hyperparameter may take: a tuple of choices or a `Range` (checked when a run
    #: is planned; see `bench.core.hparams`)
    hparam_rules: ClassVar[Mapping[str, Rule]] = {}
    #: overrides of `defaults` on one dataset (e.g. a paper's CIFAR-100 setting), applied
    #: before a preset's or the user's own
    dataset_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    #: what `bench tune` searches: hyperparameter name (or `lr` / `weight_decay` of the recipe) -> its
    #: distribution (`bench.core.search`), the ranges its paper tuned or names as sensitive
    search_space: ClassVar[Mapping[str, Dim]] = {}
    #: overrides that let a run of a few epochs reach the method's main phase (the `quick` grid)
    short_run: ClassVar[Mapping[str, Any]] = {}
    #: the hyperparameter holding the epoch at which the method's main phase starts (its warm-up
    #: length), if it has one; a run whose epochs do not reach it is refused (`check_run`)
    main_phase_from: ClassVar[str | None] = None
    #: run by the grids that take "every registered method" (False: registered, run only when named)
    in_default_grids: ClassVar[bool] = True
    #: reads the trusted clean meta set (MW-Net, GDW, FaMUS)
    uses_meta_set: ClassVar[bool] = False
    #: reads sample indices (methods that keep per-sample state)
    uses_indices: ClassVar[bool] = False
    #: trains on the engine's batches, so a per-epoch subsample of them (`RunConfig.epoch_samples`) is
    #: what it trains on; False for a method that builds its own epoch from the whole set (DivideMix)
    follows_epoch_subset: ClassVar[bool] = True
    #: its backbone may be `torch.compile`d (False for methods that call it functionally,
    #: i.e. the look-ahead methods, whose meta steps stay eager)
    compilable: ClassVar[bool] = True
    #: attributes saved in checkpoints: networks and optimisers by their state dicts; tensors,
    #: numbers and containers of them as they are
    state_attrs: ClassVar[tuple[str, ...]] = ("model", "optimizer")

    # --- how it is shown -------------------------------------------------------------------
    #: its registry name (set when it is registered)
    name: ClassVar[str] = ""
    #: its name in tables and plots (None: the registry name)
    display_name: ClassVar[str | None] = None
    #: its colour in every plot, a matplotlib colour (None: one from a spare palette)
    colour: ClassVar[str | None] = None
    #: position in listings, grids, tables and plots (lower first; ties by name)
    order: ClassVar[int] = 1000
    #: the group plots and listings put it in
    family: ClassVar[str] = "other"
    #: the method every other is compared against (statistics, ratios, heatmaps); exactly one
    is_baseline: ClassVar[bool] = False
    #: `bench perf --throughput` target: seconds per epoch at most this many times the baseline's
    #: (read from the class itself, never inherited)
    throughput_target: ClassVar[float | None] = None

    @classmethod
    def resolve_hparams(cls, *overrides: Mapping[str, Any] | None, dataset: str | None = None) -> dict[str, Any]:
        """`defaults`, then the dataset's defaults, then each of `overrides`, every value checked
        against `hparam_rules` (a UsageError names a bad key or value)."""
        owner = f"method '{cls.__dict__.get('name', cls.__name__)}'"
        return hparam_rules.resolve(owner, cls.defaults, cls.hparam_rules,
                                    cls.dataset_defaults.get(dataset or "", {}), *overrides)

    @classmethod
    def check_run(cls, hparams: Mapping[str, Any], epochs: int) -> None:
        """Refuse (UsageError, one line) a run under which the method would not do what its name
        says; called when a run is planned, with its resolved hyperparameters. The default: a
        run's epochs must reach the main phase (`main_phase_from`). Subclasses add their own."""
        key = cls.main_phase_from
        if key is None or hparams.get(key) is None or hparams[key] < epochs:
            return
        owner = cls.__dict__.get("name") or cls.name or cls.__name__
        short = cls.short_run.get(key)
        fixes = [f"--short-run (sets {key}={short})"] if short is not None and short < epochs else []
        fixes += [f"--hp {key}=N with N < {epochs}", f"at least {hparams[key] + 1} --epochs"]
        raise UsageError(f"method '{owner}': {key}={hparams[key]} but the run has {epochs} epoch(s), so its main phase "
                         f"never starts and it would train as its warm-up; use {', '.join(fixes[:-1])} or {fixes[-1]}")

    @classmethod
    def check_meta_set(cls, meta_per_class: int) -> None:
        """Refuse (UsageError) a run without a trusted meta set for a method that trains on one."""
        if cls.uses_meta_set and meta_per_class == 0:
            owner = cls.__dict__.get("name") or cls.name or cls.__name__
            raise UsageError(f"method '{owner}' learns from a trusted meta set, and this run has none "
                             "(meta_per_class 0); give it --meta-per-class N on a dataset with clean labels or a "
                             "clean set, or leave the method out")

    @classmethod
    def check_epoch_samples(cls, epoch_samples: int) -> None:
        """Refuse (UsageError) a per-epoch subsample the method would ignore, or a negative one."""
        owner = cls.__dict__.get("name") or cls.name or cls.__name__
        if epoch_samples < 0:
            raise UsageError(f"epoch_samples must be >= 0 (0: the whole training set), got {epoch_samples}")
        if epoch_samples and not cls.follows_epoch_subset:
            raise UsageError(f"method '{owner}' builds each epoch from the whole training set, so epoch_samples="
                             f"{epoch_samples} would be ignored; drop the per-epoch subsample for it")

    def __init__(self, ctx: MethodContext, hparams: dict[str, Any]) -> None:
        self.ctx = ctx
        self.hp = self.resolve_hparams(hparams)
        self.model = ctx.build_model()
        self.optimizer = ctx.build_optimizer(self.model.parameters())

    # --- what the engine calls -------------------------------------------------------------
    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Optimisers that follow the run's learning-rate schedule."""
        return [self.optimizer]

    def modules(self) -> list[nn.Module]:
        """Networks whose train/eval mode the engine switches."""
        return [self.model]

    def set_lr(self, lr: float) -> None:
        for opt in self.optimizers():
            for group in opt.param_groups:
                group["lr"] = lr

    def current_lr(self) -> float:
        """The classifier's learning rate right now."""
        return float(self.optimizer.param_groups[0]["lr"])

    def on_epoch_start(self, epoch: int) -> None:
        """Hook for methods that re-split or re-rank the data each epoch."""

    def epoch_train_indices(self, epoch: int) -> torch.Tensor | None:
        """Training-set indices this epoch's batches are drawn from (None: all of them).

        Called after `on_epoch_start`; e.g. Dynamic Loss holds its meta samples out."""
        return None

    def train_epoch(self, epoch: int, batches: Batches) -> torch.Tensor:
        """One pass over `batches`; returns the mean training loss as a 0-d tensor (no host sync)."""
        total = torch.zeros((), device=self.ctx.device)
        steps = 0
        for batch in batches:
            total += self.train_step(batch, epoch)
            steps += 1
        return total / max(steps, 1)

    def forward(self, x: torch.Tensor, model: nn.Module | None = None) -> torch.Tensor:
        """Training logits of a plain (not look-ahead) step: bf16 autocast when active, returned
        in fp32 so that per-sample losses and weights are computed in fp32."""
        with self.ctx.speed.autocast():
            logits = (model or self.model)(x)
        return logits.float()

    def train_step(self, batch: Batch, epoch: int) -> torch.Tensor:
        """One SGD step on `loss`; returns the detached batch loss."""
        loss = self.loss(self.forward(batch.x), batch.y, epoch).mean()
        self.sgd_step(loss)
        return loss.detach()

    def sgd_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Backpropagate `loss` and take one step of `optimizer` (default: the classifier's)."""
        optimizer = optimizer or self.optimizer
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def loss(self, logits: torch.Tensor, y: torch.Tensor, epoch: int) -> torch.Tensor:
        """Per-sample training loss (shape N)."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Test-time logits (the engine has switched `modules()` to eval mode)."""
        return self.model(x)

    @torch.no_grad()
    def predict_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Test-time logits and, for methods with several networks, each network's own logits
        by name (the engine records their accuracies as `test_acc_<name>`)."""
        return self.predict(x), {}

    def epoch_cost_model(self, epoch: int) -> EpochCostModel | None:
        """For a method whose epoch is not `steps × train_step` (its own loop, per-epoch passes):
        the parts of epoch `epoch` (after `on_epoch_start`), for `bench perf --epoch`. None: the
        epoch is plain steps."""
        return None

    # --- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything named in `state_attrs`, detached from the live objects."""
        return {name: _saved(getattr(self, name)) for name in self.state_attrs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.state_attrs:
            setattr(self, name, _restored(getattr(self, name), state[name]))


def _saved(value: Any) -> Any:
    """A checkpointable copy: state dicts of networks, optimisers and other stateful objects
    (anything with `state_dict`/`load_state_dict`, e.g. a meta sampler), clones of tensors."""
    if _stateful(value):
        return _saved(value.state_dict())
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _saved(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_saved(v) for v in value)
    return value


def _stateful(value: Any) -> bool:
    return callable(getattr(value, "state_dict", None)) and callable(getattr(value, "load_state_dict", None))


def _restored(current: Any, saved: Any) -> Any:
    """`saved` put back in place of `current`: loaded into networks and optimisers, tensors
    copied onto the device of the tensor they replace."""
    if _stateful(current):
        current.load_state_dict(saved)
        return current
    if isinstance(saved, torch.Tensor):
        device = current.device if isinstance(current, torch.Tensor) else saved.device
        return saved.detach().clone().to(device)
    if isinstance(saved, dict):
        current = current if isinstance(current, dict) else {}
        return {k: _restored(current.get(k), v) for k, v in saved.items()}
    if isinstance(saved, (list, tuple)):
        same_shape = isinstance(current, (list, tuple)) and len(current) == len(saved)
        parts = list(current) if same_shape else [None] * len(saved)
        return type(saved)(_restored(c, s) for c, s in zip(parts, saved))
    return saved
