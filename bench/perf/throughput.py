"""`bench perf --throughput`: epochs through the real engine on CIFAR-shaped data, solo and packed.

- **Solo pass.** Each method trains `epochs` epochs of `random-cifar` (50,000 random 3×32×32
  images; balanced, clean unless `imbalance` says otherwise) alone in this process, with the
  run's speed settings and the method's short-run overrides (`Method.short_run`: warm-ups of one
  epoch, so the last epoch is in the main phase). Its last epoch gives seconds
  per epoch (training passes only, evaluation excluded) and the median seconds per iteration.
- **Packed pass.** P processes train the baseline method at once on the same device, for P in
  `packs`. Aggregate
  throughput = Σ over the processes of training images / seconds of their last epoch. Per-
  iteration costs are only ever taken from the solo pass: packed timings measure sharing.

The targets of issue 6 (an H100: ResNet-32 baseline epoch ≤ 1.5 s at batch 128, 4 packed trials
≥ 2.5× one, and each method's own `throughput_target` over the baseline, e.g. MW-Net ≤ 5×) are
checked in the report; on CPU they are informative only. Without `methods`, the methods that
declare a target are timed.
"""
from __future__ import annotations

import multiprocessing as mp
import time
from typing import Any

from bench.core.errors import UsageError
from bench.core.specs import OptimSpec, ScheduleSpec
from bench.grid.presets import resolve_hparams
from bench.nn.speed import SpeedSpec
from bench.train.config import RunConfig
from bench.train.engine import TrialOptions, run_trial
from bench.train.envinfo import resolve_device
from methods import METHODS
from noisytail_datasets import DataSpec

DATASET = "random-cifar"
#: the harness's own targets: the baseline's epoch (seconds) and 4 packed trials over one
BASELINE_EPOCH_TARGET_S = 1.5
PACKED4_TARGET = 2.5
DEFAULT_SPEED = SpeedSpec()


def _config(method: str, backbone: str, batch: int, epochs: int, speed: SpeedSpec, imbalance: float) -> RunConfig:
    data = DataSpec(dataset=DATASET, imbalance=imbalance, noise="none", noise_rate=0.0, data_seed=0)
    short = METHODS.get(method).short_run  # warm-ups of 1 epoch
    return RunConfig(data=data, method=method, backbone=backbone, epochs=epochs, batch_size=batch, seed=0,
                     optim=OptimSpec(lr=0.1), schedule=ScheduleSpec(name="cosine"),
                     hparams=resolve_hparams(method, short), speed=speed)


def solo_epoch(method: str, backbone: str = "resnet32", batch: int = 128, device: str = "cuda", epochs: int = 3,
               speed: SpeedSpec = DEFAULT_SPEED, imbalance: float = 1.0) -> dict[str, Any]:
    """Train one run alone; its last epoch's timings."""
    record = run_trial(_config(method, backbone, batch, epochs, speed, imbalance), TrialOptions(device=device))
    if record["status"] != "done":
        raise RuntimeError(f"{method} failed: {record['error']}")
    last = record["epochs"][-1]
    return {"method": method, "sec_per_epoch": last["sec_epoch"], "sec_per_iter": last["sec_per_iter"],
            "images": last["samples"], "speed": record["speed"], "device": record["env"]["device"],
            "gpu": record["env"].get("gpu", "")}


def _child(args: tuple, barrier: Any, queue: Any) -> None:
    barrier.wait()  # start together, so the last epochs overlap
    queue.put(solo_epoch(*args))


def packed_throughput(n: int, backbone: str = "resnet32", batch: int = 128, device: str = "cuda", epochs: int = 3,
                      speed: SpeedSpec = DEFAULT_SPEED, imbalance: float = 1.0) -> dict[str, Any]:
    """`n` baseline runs at once in separate processes on one device: aggregate images per second."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    args = (METHODS.baseline(), backbone, batch, device, epochs, speed, imbalance)
    procs = [ctx.Process(target=_child, args=(args, barrier, queue)) for _ in range(n)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - started
    rate = sum(r["images"] / r["sec_per_epoch"] for r in results)
    return {"trials": n, "images_per_sec": rate, "wall_s": wall,
            "sec_per_epoch_each": [r["sec_per_epoch"] for r in results]}


def run_device_perf(methods: list[str] | None = None, backbone: str = "resnet32", batch: int = 128,
                    device: str = "cuda", epochs: int = 3, packs: tuple[int, ...] = (1, 2, 4, 8),
                    speed: SpeedSpec = DEFAULT_SPEED, imbalance: float = 1.0) -> dict[str, Any]:
    """The solo pass over `methods` (the baseline first) and the packed pass over `packs`."""
    if epochs < 2:
        raise UsageError("--epochs must be at least 2 for a steady-state epoch")
    resolve_device(device)
    baseline = METHODS.baseline()
    names = [baseline] + [m for m in (methods or with_throughput_target()) if m != baseline]
    solo = [solo_epoch(m, backbone, batch, device, epochs, speed, imbalance) for m in names]
    base = solo[0]
    for row in solo:
        row["ratio_to_ce"] = row["sec_per_epoch"] / base["sec_per_epoch"]
    packed = [packed_throughput(n, backbone, batch, device, epochs, speed, imbalance) for n in packs]
    one = next((p["images_per_sec"] for p in packed if p["trials"] == 1), base["images"] / base["sec_per_epoch"])
    for row in packed:
        row["over_solo"] = row["images_per_sec"] / one
    # (value, target, True when the value must stay at or below the target)
    checks = {f"{baseline}_epoch_s": (base["sec_per_epoch"], BASELINE_EPOCH_TARGET_S, True)}
    for row in solo[1:]:
        target = vars(METHODS.get(row["method"])).get("throughput_target")
        if target is not None:
            checks[f"{row['method']}_over_{baseline}"] = (row["ratio_to_ce"], target, True)
    if any(p["trials"] == 4 for p in packed):
        checks["packed4_over_solo"] = (next(p["over_solo"] for p in packed if p["trials"] == 4), PACKED4_TARGET, False)
    return {"backbone": backbone, "batch": batch, "device": base["device"], "gpu": base["gpu"], "epochs": epochs,
            "dataset": DATASET, "imbalance": imbalance, "speed": base["speed"], "baseline": baseline, "solo": solo,
            "packed": packed,
            "targets": {k: {"value": v, "target": target, "met": v <= target if at_most else v >= target}
                        for k, (v, target, at_most) in checks.items()}}


def with_throughput_target() -> list[str]:
    """The methods that declare their own `throughput_target` (on the class itself)."""
    return [m for m in METHODS.names() if vars(METHODS.get(m)).get("throughput_target") is not None]


def format_device_perf(result: dict[str, Any]) -> str:
    """A text report of `run_device_perf`."""
    base = METHODS.display_name(result.get("baseline") or METHODS.baseline())
    lines = [(f"{result['dataset']} (ρ={result['imbalance']:g}), {result['backbone']}, batch {result['batch']}, "
              f"device {result['device']} {result['gpu']}, speed {result['speed']}"),
             f"{'method':<18} {'s/epoch':>9} {'ms/iter':>9} {'x ' + base:>6}"]
    for r in result["solo"]:
        lines.append(f"{r['method']:<18} {r['sec_per_epoch']:>9.2f} {r['sec_per_iter'] * 1e3:>9.1f} "
                     f"{r['ratio_to_ce']:>6.2f}")
    lines.append(f"{f'packed {base} trials':<18} {'images/s':>9} {'x solo':>9}")
    for p in result["packed"]:
        lines.append(f"{p['trials']:<18} {p['images_per_sec']:>9.0f} {p['over_solo']:>9.2f}")
    for name, t in result["targets"].items():
        lines.append(f"target {name}: {t['value']:.2f} (target {'≥' if name == 'packed4_over_solo' else '≤'} "
                     f"{t['target']}) {'met' if t['met'] else 'missed'}")
    return "\n".join(lines)
