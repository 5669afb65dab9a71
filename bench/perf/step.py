"""`bench perf`: each method's training step timed side by side in one process.

Candidates are interleaved round by round, in an order rotated every round, so that drift in
machine speed and position effects hit all of them alike; each gets its own warm-up first.
The floor is a bare PyTorch loop on the same backbone, batch and optimiser with plain tensors. Peak memory
is CUDA max-allocated per candidate on GPU; on CPU it is the peak RSS of a fresh child
process that runs the same candidate for a few steps (RSS is per process, not per candidate).
"""
from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from bench.core.specs import OptimSpec
from bench.nn.backbones import build_backbone
from bench.train import timing
from bench.train.envinfo import resolve_device
from methods import METHODS, Batch, Method, MethodContext
from methods.base import Diagnostics

NUM_CLASSES = 10
META_PER_CLASS = 10
#: the step is timed at the last of at least this many epochs, and always past the method's
#: default warm-up (`Method.main_phase_from`)
PERF_EPOCHS = 20
#: input (channels, size) the backbones are sized for
INPUT_SHAPES = {"mlp": (1, 28), "small_cnn": (1, 28)}


def _input_shape(backbone: str) -> tuple[int, int]:
    return INPUT_SHAPES.get(backbone, (3, 32))


def steady_epochs(method_cls: type[Method]) -> int:
    """Epochs of the timed run: its last epoch is in the method's main phase."""
    warmup = method_cls.defaults.get(method_cls.main_phase_from, 0) if method_cls.main_phase_from else 0
    return max(PERF_EPOCHS, warmup + 1)


#: the routes of the meta gradient a candidate can name, as `mwnet[jvp]` (methods.bilevel)
META_GRAD_ROUTES = ("jvp", "unrolled")


def candidate_names(name: str, meta_grads: tuple[str, ...]) -> list[str]:
    """`name`, or one candidate per route in `meta_grads` for a method with a `meta_grad` setting."""
    if "meta_grad" not in METHODS.get(name).defaults:
        return [name]
    return [f"{name}[{route}]" for route in meta_grads]


def _split_candidate(name: str) -> tuple[str, dict[str, Any]]:
    """'mwnet[jvp]' -> ('mwnet', {'meta_grad': 'jvp'}); other names have no overrides."""
    if name.endswith("]") and "[" in name:
        method, route = name[:-1].split("[", 1)
        return method, {"meta_grad": route}
    return name, {}


def make_step(name: str, backbone: str, batch: int, device: torch.device) -> Callable[[], Any]:
    """A zero-argument callable doing one training step of candidate `name` ('bare', a method, or a
    method on one route of its meta gradient, e.g. 'mwnet[unrolled]')."""
    channels, size = _input_shape(backbone)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, size, size, generator=gen).to(device)
    y = torch.randint(0, NUM_CLASSES, (batch,), generator=gen).to(device)
    optim = OptimSpec(lr=0.1, momentum=0.9, weight_decay=5e-4)
    factory = lambda: build_backbone(backbone, channels, NUM_CLASSES, size)  # noqa: E731
    if name == "bare":
        model = factory().to(device)
        opt = torch.optim.SGD(model.parameters(), lr=optim.lr, momentum=optim.momentum,
                              weight_decay=optim.weight_decay)

        def bare_step() -> torch.Tensor:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss.detach()

        return bare_step
    name, overrides = _split_candidate(name)
    method_cls = METHODS.get(name)
    n_train = batch * 8
    train_y = torch.randint(0, NUM_CLASSES, (n_train,), generator=gen).to(device)
    meta_y = torch.arange(NUM_CLASSES).repeat_interleave(META_PER_CLASS).to(device)
    ctx = MethodContext(
        num_classes=NUM_CLASSES, in_channels=channels, image_size=size, epochs=steady_epochs(method_cls),
        batch_size=batch,
        steps_per_epoch=8, device=device, optim=optim, train_y=train_y,
        noisy_counts=torch.bincount(train_y.cpu(), minlength=NUM_CLASSES).tolist(),
        model_factory=factory, transform=lambda t, train=True, generator=None: t.float(),
        generator=gen, diagnostics=Diagnostics(train_y),
        meta_x=torch.randint(0, 256, (len(meta_y), channels, size, size), dtype=torch.uint8).to(device),
        meta_y=meta_y,
        train_x=torch.randint(0, 256, (n_train, channels, size, size), dtype=torch.uint8, generator=gen).to(device),
    )
    method = method_cls(ctx, {**method_cls.defaults, **overrides})
    data = Batch(x=x, y=y, index=torch.arange(batch, device=device))
    # time the step of the method's steady state: the last epoch, past any warm-up phase
    epoch = ctx.epochs - 1
    method.on_epoch_start(epoch)
    return lambda: method.train_step(data, epoch)


def _child_peak_rss(name: str, backbone: str, batch: int, steps: int) -> float:
    step = make_step(name, backbone, batch, torch.device("cpu"))
    for _ in range(steps):
        step()
    return timing.peak_rss_mb()


def _cpu_peak_mb(name: str, backbone: str, batch: int, steps: int = 3) -> float:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(_child_peak_rss, (name, backbone, batch, steps))


def run_perf(
    backbone: str = "resnet32", batch: int = 128, device: str = "cpu", methods: list[str] | None = None,
    iters: int = 10, warmup: int = 3, measure_memory: bool = True, meta_grads: tuple[str, ...] = META_GRAD_ROUTES,
) -> list[dict[str, Any]]:
    """One row per candidate: method, sec_per_iter (median), ratio_to_ce (to the baseline method,
    which is always timed), peak_mem_mb. A method with a `meta_grad` setting is timed once per route
    in `meta_grads` (rows `mwnet[jvp]`, `mwnet[unrolled]`)."""
    dev = resolve_device(device)
    names = list(methods) if methods else METHODS.names()
    for name in names:
        METHODS.get(name)
    baseline = METHODS.baseline()
    routed = [candidate for name in names for candidate in candidate_names(name, meta_grads)]
    candidates = ["bare"] + ([baseline] if baseline not in names else []) + routed
    steps = {name: make_step(name, backbone, batch, dev) for name in candidates}
    peaks: dict[str, float] = {}
    for name, step in steps.items():
        timing.reset_peak_memory(dev)
        for _ in range(warmup):
            step()
        timing.synchronize(dev)
        if dev.type == "cuda":
            peaks[name] = timing.peak_memory_mb(dev)
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for round_ in range(iters):
        # rotate the order each round so no candidate always runs first (or after the same one)
        shift = round_ % len(candidates)
        for name in candidates[shift:] + candidates[:shift]:
            t0 = timing.now(dev)
            steps[name]()
            samples[name].append(timing.now(dev) - t0)
    if dev.type != "cuda" and measure_memory:
        peaks = {name: _cpu_peak_mb(name, backbone, batch) for name in candidates}
    ce = timing.median(samples[baseline])
    rows = []
    for name in candidates:
        sec = timing.median(samples[name])
        rows.append({
            "method": name, "sec_per_iter": sec, "ratio_to_ce": sec / ce,
            "peak_mem_mb": peaks.get(name, float("nan")),
            "backbone": backbone, "batch": batch, "device": str(dev),
        })
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width text table of `run_perf` rows."""
    head = f"{'method':<22} {'ms/iter':>9} {'x CE':>6} {'peak MB':>9}"
    lines = [f"backbone {rows[0]['backbone']}, batch {rows[0]['batch']}, device {rows[0]['device']}", head]
    for r in rows:
        lines.append(f"{r['method']:<22} {r['sec_per_iter'] * 1e3:>9.1f} {r['ratio_to_ce']:>6.2f} "
                     f"{r['peak_mem_mb']:>9.0f}")
    return "\n".join(lines)
