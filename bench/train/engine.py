"""The per-run trial loop that every method plugs into.

`run_trial` builds the data, the backbone (through the method) and the method, then for each
epoch trains, evaluates on the test set and records. It knows no method by name.
Accuracies are percentages. "best" is the maximum test accuracy over epochs, i.e. selected
on the test set (an optimistic diagnostic, protocols.md §E); "last" is the final epoch and
"last5" the mean of the last five epochs (GDW's metric). With a validation split (`DataSpec.val_fraction`)
every epoch also records the accuracy on it against its noisy labels ("val_acc") and its class-balanced
version ("val_bal_acc": the mean of the per-class accuracies, since the test sets are balanced), and the
summary adds "selected": the test accuracy at the epoch the validation score picks (`selection_metric`;
ties: the later epoch), model selection with data a practitioner has. Datasets that ask for them
(`BaseDatasetInfo.report_top5`, `report_shots`) add top-5 accuracies, the accuracies on their
extra test sets, and many/medium/few-shot accuracies to every epoch's row.

The data path follows the data: images held as uint8 tensors stay on the device and are
augmented there in batches; images that are files are streamed (`noisytail_datasets.streaming`,
`TrialOptions.data_workers` decoding processes). Methods see the same `Images` interface on both.
"""
from __future__ import annotations

import math
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from bench.nn.backbones import build_backbone
from bench.nn.speed import ActiveSpeed, apply_global, resolve_speed
from bench.train import timing
from bench.train.checkpoint import load_checkpoint, save_checkpoint
from bench.train.config import RunConfig
from bench.train.envinfo import environment, git_commit, resolve_device
from bench.train.schedules import lr_at, per_iteration
from bench.train.stream import BatchStream, balanced_subset
from methods import METHODS, Method, MethodContext
from methods.base import Diagnostics, Images, TensorImages
from noisytail_datasets import DATASETS, BatchTransform, DataBundle, DataSpec, build_data, describe
from noisytail_datasets.long_tail import shot_groups
from noisytail_datasets.streaming import StreamingImages

Report = Callable[[dict[str, Any]], None]


class TrainingFailed(RuntimeError):
    """The run diverged or produced a non-finite loss."""


@dataclass
class TrialOptions:
    """How (not what) to run: none of these change the numbers a run should produce."""

    device: str = "auto"
    data_root: str | None = None
    download: bool = False
    checkpoint_dir: Path | None = None
    checkpoint_every: int = 10
    colocated: int = 1
    threads: int | None = None
    timing_warmup: int = 5
    eval_batch_size: int = 1000
    diverge_loss: float = 1e4
    #: processes decoding streamed images (None: half the CPU cores, at most 8; 0: in the training process)
    data_workers: int | None = None


def default_data_workers() -> int:
    """Half the CPU cores, at most 8: decoding processes of the streaming path."""
    return min(8, (os.cpu_count() or 2) // 2)


def images_of(x: torch.Tensor | Any, bundle: DataBundle, transform: Callable[..., torch.Tensor],
              device: torch.device, workers: int = 0) -> Images:
    """A split's images as methods read them: device-resident tensors through `transform`, or files
    streamed through the bundle's pipeline and normalised by `transform`."""
    if isinstance(x, torch.Tensor):
        return TensorImages(x, transform)
    return StreamingImages(x, bundle.stream, lambda batch: transform(batch, train=False), device, workers)


def selection_metric(spec: DataSpec) -> str:
    """The validation score that selects an epoch (and a tuning trial): class-balanced accuracy on
    long-tailed data (ρ > 1: the test sets are balanced, the validation split is not), plain accuracy
    otherwise; "" without a validation split."""
    if not spec.val_fraction:
        return ""
    return "val_bal_acc" if spec.imbalance > 1 else "val_acc"


@dataclass
class EvalSets:
    """The evaluation sets of a run: the clean main test set ("test"), any extra ones, and the noisy
    validation split ("val", scored against its noisy labels, with its class-balanced accuracy), with
    what to record: top-5 accuracies and the many/medium/few group of each class (None: not recorded)."""

    sets: dict[str, tuple[Images, torch.Tensor]]
    top5: bool = False
    groups: torch.Tensor | None = None
    num_classes: int = 0

    @classmethod
    def of(cls, bundle: DataBundle, transform: Callable[..., torch.Tensor], device: torch.device,
           workers: int = 0) -> "EvalSets":
        info = DATASETS.get(bundle.spec.dataset)
        sets = {"test": (images_of(bundle.test_x, bundle, transform, device, workers), bundle.test_y)}
        for name, (x, y) in bundle.extra_tests.items():
            sets[name] = (images_of(x, bundle, transform, device, workers), y)
        if len(bundle.val_y):
            sets["val"] = (images_of(bundle.val_x, bundle, transform, device, workers), bundle.val_y)
        groups = None
        if info.report_shots:
            groups = torch.as_tensor(shot_groups(bundle.clean_counts if bundle.clean_labels_known
                                                 else bundle.noisy_counts))
        return cls(sets, top5=info.report_top5, groups=groups, num_classes=bundle.num_classes)


def evaluate(method: Method, tests: EvalSets, batch_size: int) -> dict[str, float]:
    """Accuracies (%) of `method.predict` on the untouched test set ("test_acc"), of each of its
    networks where it has several ("test_acc_<name>"); where the dataset asks for them, top-5
    ("test_top5"), each extra test set ("<set>_acc", "<set>_top5") and the many/medium/few-shot
    class groups ("many_acc", …: the mean of the per-class accuracies in each group, on the main set)."""
    for module in method.modules():
        module.eval()
    out: dict[str, float] = {}
    with torch.no_grad():
        for set_name, (images, labels) in tests.sets.items():
            out.update(_score(method, set_name, images, labels, batch_size, tests.top5,
                              tests.groups if set_name == "test" else None,
                              tests.num_classes if set_name == "val" else 0))
    for module in method.modules():
        module.train()
    return out


def _score(method: Method, set_name: str, images: Images, labels: torch.Tensor, batch_size: int, top5: bool,
           groups: torch.Tensor | None, balanced_over: int = 0) -> dict[str, float]:
    """One evaluation set's accuracies (see `evaluate`); with `balanced_over` = C classes, also the mean
    per-class accuracy over the classes present ("<set>_bal_acc"). Counts stay on the device until the end."""
    main = set_name == "test"
    prefix = "test" if main else set_name
    correct: dict[str, torch.Tensor] = {}
    per_class = torch.zeros(len(groups), device=labels.device) if groups is not None else None
    class_hits = torch.zeros(balanced_over, device=labels.device) if balanced_over else None

    def add(name: str, hits: torch.Tensor) -> None:
        correct[name] = correct[name] + hits.sum() if name in correct else hits.sum()

    for start, x in images.in_order(batch_size):
        y = labels[start : start + len(x)]
        logits, heads = method.predict_heads(x)
        hit = logits.argmax(dim=1) == y
        add(f"{prefix}_acc", hit)
        if main:
            for k, v in heads.items():
                add(f"test_acc_{k}", v.argmax(dim=1) == y)
        if top5:
            add(f"{prefix}_top5", (logits.topk(min(5, logits.shape[1]), dim=1).indices == y[:, None]).any(dim=1))
        if per_class is not None:
            per_class.index_add_(0, y, hit.float())
        if class_hits is not None:
            class_hits.index_add_(0, y, hit.float())
    n = len(labels)
    scores = {name: c.item() * 100.0 / n for name, c in correct.items()}
    if class_hits is not None:
        totals = torch.bincount(labels, minlength=balanced_over).float()
        present = totals > 0
        scores[f"{prefix}_bal_acc"] = float((class_hits[present] / totals[present]).mean().cpu()) * 100.0
    if per_class is not None:
        totals = torch.bincount(labels, minlength=len(groups)).float()
        class_acc = (per_class / totals.clamp(min=1) * 100.0).cpu()
        present = (totals > 0).cpu()
        for g, name in enumerate(("many_acc", "medium_acc", "few_acc")):
            members = (groups == g) & present
            scores[name] = float(class_acc[members].mean()) if members.any() else float("nan")
    return scores


def build_method(cfg: RunConfig, bundle: DataBundle, device: torch.device, generator: torch.Generator,
                 speed: ActiveSpeed | None = None, workers: int = 0) -> Method:
    """Instantiate the configured method on the bundle (meta set only if it declares it); streamed
    images are decoded by `workers` processes."""
    method_cls = METHODS.get(cfg.method)
    method_cls.check_run(method_cls.resolve_hparams(cfg.hparams, dataset=cfg.data.dataset), cfg.epochs)
    method_cls.check_epoch_samples(cfg.epoch_samples)
    method_cls.check_meta_set(cfg.data.meta_per_class)
    speed = speed or ActiveSpeed()
    if speed.compile == "on" and not method_cls.compilable:
        speed.compile = "off (eager: the method's look-ahead calls the backbone functionally)"
    transform = BatchTransform(bundle.mean, bundle.std, bundle.augment)
    if speed.channels_last:
        plain = transform

        def transform(*args: Any, **kwargs: Any) -> torch.Tensor:  # batches in channels-last layout
            return speed.memory_format(plain(*args, **kwargs))

    ctx = MethodContext(
        num_classes=bundle.num_classes,
        in_channels=bundle.in_channels,
        image_size=bundle.image_size,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        steps_per_epoch=-(-len(bundle.train_y) // cfg.batch_size),
        device=device,
        optim=cfg.optim,
        train_y=bundle.train_y,
        noisy_counts=bundle.noisy_counts,
        model_factory=lambda: build_backbone(
            cfg.backbone, bundle.in_channels, bundle.num_classes, bundle.image_size, pretrained=cfg.pretrained
        ),
        transform=transform,
        generator=generator,
        diagnostics=Diagnostics(bundle.train_true_y, bundle.clean_labels_known),
        meta_x=bundle.meta_x if method_cls.uses_meta_set and not bundle.streamed else None,
        meta_y=bundle.meta_y if method_cls.uses_meta_set else None,
        train_x=None if bundle.streamed else bundle.train_x,
        speed=speed,
        train_images=images_of(bundle.train_x, bundle, transform, device, workers),
        meta_images=images_of(bundle.meta_x, bundle, transform, device, workers) if method_cls.uses_meta_set else None,
    )
    return method_cls(ctx, dict(cfg.hparams))


def train_one_epoch(method: Method, stream: BatchStream, epoch: int, epoch_samples: int = 0) -> torch.Tensor:
    """One epoch as every run trains it: the method's per-epoch passes, the epoch's subset of
    the training set (with `epoch_samples`, a fresh class-balanced draw of that many from it), then
    its batches. Returns the mean training loss (0-d tensor)."""
    method.on_epoch_start(epoch)
    stream.subset = method.epoch_train_indices(epoch)
    if epoch_samples:
        ctx = method.ctx
        stream.subset = balanced_subset(ctx.train_y, epoch_samples, ctx.num_classes, ctx.generator, stream.subset)
    stream.start_epoch()
    return method.train_epoch(epoch, stream)


def selected_epoch(history: list[dict[str, Any]], metric: str) -> int:
    """The position in `history` of the highest `metric` (ties: the later epoch); -1 when none has it."""
    chosen, top = -1, -math.inf
    for i, h in enumerate(history):
        value = h.get(metric)
        if value is not None and math.isfinite(value) and value >= top:
            chosen, top = i, value
    return chosen


def summarize(history: list[dict[str, Any]], intervals: list[float], selection: str = "") -> dict[str, Any]:
    """last / best / last5 accuracies, the validation-selected one (`selection`: the validation score that
    picks the epoch, "" none) and timings from the epoch history."""
    accs = [h["test_acc"] for h in history]
    train_secs = [h["sec_epoch"] for h in history]
    best_epoch = max(range(len(accs)), key=accs.__getitem__) if accs else -1
    chosen = selected_epoch(history, selection) if selection else -1
    return {
        "selected_acc": accs[chosen] if chosen >= 0 else float("nan"),
        "selected_epoch": chosen,
        "selected_on": selection,
        "selected_val": history[chosen][selection] if chosen >= 0 else float("nan"),
        "last_acc": accs[-1] if accs else float("nan"),
        "best_acc": accs[best_epoch] if accs else float("nan"),
        "best_epoch": best_epoch,
        "best_selected_on": "test",  # max over epochs of test accuracy: an optimistic diagnostic
        "last5_acc": sum(accs[-5:]) / len(accs[-5:]) if accs else float("nan"),
        "sec_per_iter": timing.median(intervals),
        "sec_per_epoch": sum(train_secs) / len(train_secs) if train_secs else float("nan"),
        "samples_per_sec": (
            sum(h["samples"] for h in history) / sum(train_secs) if sum(train_secs) > 0 else float("nan")
        ),
    }


def run_trial(cfg: RunConfig, opts: TrialOptions | None = None, report: Report | None = None) -> dict[str, Any]:
    """Train and evaluate one run; return its record. Training failures become status 'failed'.

    `report` (if given) receives a dict after every epoch; the Ray launcher forwards it to Tune.
    """
    opts = opts or TrialOptions()
    device = resolve_device(opts.device)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    speed = resolve_speed(cfg.speed, device, image_input=True)
    record = _train(cfg, opts, report, device, speed)
    if record.get("compile_error"):  # set only when compiling was on and is what failed
        # compiling failed: start the run again, eagerly, and say so in the record
        from torch import _dynamo

        speed.compile = f"failed, ran eager: {record['compile_error']}"
        _dynamo.reset()
        record = _train(cfg, opts, report, device, speed)
    return record


def _train(cfg: RunConfig, opts: TrialOptions, report: Report | None, device: torch.device,
           speed: ActiveSpeed) -> dict[str, Any]:
    """One attempt at a run (see `run_trial`)."""
    return _Attempt(cfg, opts, report, device, speed).run()


class _Attempt:
    """One attempt at a run: build, resume, train epoch by epoch, record. A failure inside
    becomes the record's status and error; the grid goes on."""

    def __init__(self, cfg: RunConfig, opts: TrialOptions, report: Report | None, device: torch.device,
                 speed: ActiveSpeed) -> None:
        self.cfg, self.opts, self.report, self.device, self.speed = cfg, opts, report, device, speed
        self.started = time.perf_counter()
        self.record: dict[str, Any] = {
            "run_id": cfg.run_id, "preset": cfg.preset, "config": cfg.to_dict(), "status": "failed", "error": "",
            "epochs": [], "git_commit": git_commit(), "env": environment(device), "colocated": opts.colocated,
        }
        self.history: list[dict[str, Any]] = self.record["epochs"]
        self.intervals: list[float] = []
        self.ckpt_path = opts.checkpoint_dir / f"{cfg.run_id}.pt" if opts.checkpoint_dir else None

    def run(self) -> dict[str, Any]:
        apply_global(self.speed)
        try:
            self.build()
            for epoch in range(self.resume(), self.cfg.epochs):
                self.train_epoch(epoch)
            self.record["status"] = "done"
        except Exception as exc:  # a failed run is recorded, the grid goes on
            self.record_failure(exc)
        return self.finish()

    def build(self) -> None:
        """Seed, build the data and the method, and the batch stream with its LR hook."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        timing.reset_peak_memory(self.device)
        self.bundle = build_data(cfg.data, device=self.device, data_root=self.opts.data_root,
                                 download=self.opts.download)
        self.record["data"] = {k: v for k, v in describe(self.bundle).items() if k != "transition_matrix"}
        workers = default_data_workers() if self.opts.data_workers is None else self.opts.data_workers
        self.method = build_method(cfg, self.bundle, self.device, self.generator, self.speed, workers)
        self.tests = EvalSets.of(self.bundle, self.method.ctx.transform, self.device, workers)
        self.record["data_path"] = f"streamed ({workers} decoding workers)" if self.bundle.streamed else "device"
        self.record["meta_set_used"] = type(self.method).uses_meta_set
        self.epoch = 0
        within_epoch = cfg.schedule.warmup_epochs > 0 or per_iteration(cfg.schedule)
        self.stream = BatchStream(
            self.method.ctx.train_images, self.bundle.train_y, cfg.batch_size, None, self.generator,
            before_step=self._lr_within_epoch if within_epoch else None,
            with_index=type(self.method).uses_indices,
        )

    def set_lr(self, epoch: int, frac: float) -> None:
        self.method.set_lr(lr_at(self.cfg.schedule, self.cfg.optim.lr, epoch, self.cfg.epochs, frac))

    def _lr_within_epoch(self, step: int, steps: int) -> None:
        """Per-iteration LR: during the linear warm-up, or for a per-iteration schedule."""
        if self.epoch < self.cfg.schedule.warmup_epochs or per_iteration(self.cfg.schedule):
            self.set_lr(self.epoch, step / steps)

    def resume(self) -> int:
        """Load this run's checkpoint if there is one; returns the first epoch to train.

        A checkpoint naming anything a checkpoint never holds (a callable, a foreign class) is
        refused unrun and the run starts over (nothing was loaded, so no rebuild), saying so.
        """
        from bench.train.checkpoint import CheckpointRefused  # here: the engine's imports are not this edit's

        try:
            state = load_checkpoint(self.ckpt_path) if self.ckpt_path else None
        except CheckpointRefused as exc:
            self.record["checkpoint_error"] = f"checkpoint not loadable, started over: {exc}"
            return 0
        if not isinstance(state, dict) or state.get("run_id") != self.cfg.run_id:
            return 0
        try:
            self.method.load_state_dict(state["method"])
        except (KeyError, RuntimeError, ValueError) as exc:  # written by older code: start over, say so
            self.record["checkpoint_error"] = f"checkpoint not loadable, started over: {type(exc).__name__}: {exc}"
            self.build()
            return 0
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)  # e.g. Gumbel noise drawn on the device
        self.history.extend(state["history"])
        self.intervals.extend(state["intervals"])
        self.record["resumed_from_epoch"] = state["epoch"] + 1
        return state["epoch"] + 1

    def train_epoch(self, epoch: int) -> None:
        """Train, check the loss, evaluate, record and report one epoch, then checkpoint."""
        method, stream = self.method, self.stream
        self.epoch = epoch
        self.set_lr(epoch, 0.0)
        lr = method.optimizers()[0].param_groups[0]["lr"]
        t0 = timing.now(self.device)  # per-epoch passes (re-ranking, re-splitting) count as training time
        loss = float(train_one_epoch(method, stream, epoch, self.cfg.epoch_samples).item())
        sec_epoch = timing.now(self.device) - t0
        # the first iterations in a process pay for allocation and caching: not timed
        skip = self.opts.timing_warmup if epoch == self.record.get("resumed_from_epoch", 0) else 0
        epoch_intervals = stream.intervals[skip:] or stream.intervals[-1:]
        self.intervals.extend(epoch_intervals)
        if not math.isfinite(loss) or loss > self.opts.diverge_loss:
            raise TrainingFailed(f"training loss {loss:.4g} at epoch {epoch} (non-finite or diverging)")
        row = {
            "epoch": epoch,
            **evaluate(method, self.tests, self.opts.eval_batch_size),
            "train_loss": loss,
            "lr": lr,
            "sec_per_iter": timing.median(epoch_intervals),
            "sec_epoch": sec_epoch,
            "samples": len(self.bundle.train_y) if stream.subset is None else len(stream.subset),
            **method.ctx.diagnostics.pop(),
        }
        self.history.append(row)
        if self.report is not None:
            selection = selection_metric(self.cfg.data)
            self.report({**row, "best_acc": max(h["test_acc"] for h in self.history),
                         **({"val_score": row[selection]} if selection else {})})
        if self.ckpt_path and (epoch + 1) % self.opts.checkpoint_every == 0 and epoch + 1 < self.cfg.epochs:
            self.checkpoint(epoch)

    def checkpoint(self, epoch: int) -> None:
        """Save everything a resume needs; a failed write leaves the run going, unresumable."""
        try:
            save_checkpoint(self.ckpt_path, {
                "run_id": self.cfg.run_id, "epoch": epoch, "method": self.method.state_dict(),
                "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
                "history": self.history, "intervals": self.intervals,
            })
        except OSError as exc:  # e.g. --out not writable on this worker
            self.record["checkpoint_error"] = f"epoch {epoch}: {exc}"

    def record_failure(self, exc: Exception) -> None:
        self.record["error"] = f"{type(exc).__name__}: {exc}"
        self.record["traceback"] = traceback.format_exc()
        if self.speed.compile == "on" and type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):
            self.record["compile_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"

    def finish(self) -> dict[str, Any]:
        """The summary and the speed settings in force. The checkpoint stays: the store deletes it once the
        record is written (`ResultsStore.write`), so a run whose record cannot be stored resumes."""
        record = self.record
        record["speed"] = self.speed.as_dict()
        record["summary"] = {
            **summarize(self.history, self.intervals, selection_metric(self.cfg.data)),
            "sec_total": time.perf_counter() - self.started,
            "peak_mem_mb": timing.peak_memory_mb(self.device),
        }
        record["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return record
