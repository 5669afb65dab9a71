"""`bench perf`: training steps side by side (default), one method's epoch against its cost model
(`--epoch`), throughput through the engine (`--throughput`), the launchers' overhead
(`--launcher`), and the streaming data path against a bare DataLoader (`--stream`)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.cli.args import (
    add_speed_args,
    device_name,
    imbalance_float,
    noise_rate_float,
    non_empty,
    parse_methods,
    require_device,
    speed_of,
)
from bench.core.errors import UsageError


def add_to(sub: argparse._SubParsersAction) -> None:
    perf = sub.add_parser("perf", help="time each method's training step side by side")
    perf.add_argument("--backbone", type=non_empty,
                      help="default: resnet32 (with --epoch: the dataset's recipe backbone)")
    perf.add_argument("--batch", type=int, default=128)
    perf.add_argument("--device", type=device_name, default="cpu")
    perf.add_argument("--methods", type=parse_methods)
    perf.add_argument("--iters", type=int, default=20, help="timed iterations per method")
    perf.add_argument("--warmup", type=int, default=3)
    perf.add_argument("--meta-grad", choices=("both", "jvp", "unrolled"), default="both",
                      help="step timing: the route(s) of the meta gradient timed for the look-ahead methods "
                           "(both: side by side)")
    perf.add_argument("--json", action="store_true")
    _add_epoch_args(perf)
    _add_throughput_args(perf)
    _add_stream_args(perf)
    perf.add_argument("--launcher", choices=("ray", "local", "both"),
                      help="time `run grid --preset P` end to end under this launcher (both: Ray's overhead per trial)")
    perf.add_argument("--preset", type=non_empty, default="quick",
                      help="with --launcher: the grid to run (--methods narrows it)")
    add_speed_args(perf)
    perf.set_defaults(handler=run)


def _add_epoch_args(perf: argparse.ArgumentParser) -> None:
    perf.add_argument("--epoch", action="store_true",
                      help="time one post-warm-up epoch of a method with its own epoch structure on real data "
                           "against a baseline epoch and the method's cost model")
    perf.add_argument("--method", type=non_empty,
                      help="with --epoch: a method that declares an epoch cost model "
                           "(default: the first in the listing that does)")
    perf.add_argument("--dataset", type=non_empty,
                      help="with --epoch (default fashion-mnist); with --stream: a streamed dataset "
                           "whose training images to time (default: a synthetic fixture)")
    perf.add_argument("--noise", type=non_empty, default="sym", help="with --epoch")
    perf.add_argument("--noise-rate", type=noise_rate_float, default=0.4, help="with --epoch")
    perf.add_argument("--imbalance", type=imbalance_float, default=1.0, help="with --epoch")
    perf.add_argument("--warmup-epochs", type=int, default=1,
                      help="with --epoch: warm-up epochs before the timed one")
    perf.add_argument("--data-root", type=non_empty, help="with --epoch or --stream")


def _add_throughput_args(perf: argparse.ArgumentParser) -> None:
    perf.add_argument("--throughput", action="store_true",
                      help="epochs through the engine on random-cifar (solo, per method) and packed baseline trials")
    perf.add_argument("--epochs", type=int, default=3,
                      help="with --throughput: epochs per run (the last is timed)")
    perf.add_argument("--packs", type=_parse_packs, default="1,2,4,8",
                      help="with --throughput: numbers of trials packed at once")
    perf.add_argument("--json-out", type=non_empty,
                      help="with --throughput or --stream: also write the result (and this command) "
                           "as JSON here, e.g. results/perf/h100.json")


def _add_stream_args(perf: argparse.ArgumentParser) -> None:
    perf.add_argument("--stream", action="store_true",
                      help="images/s of the streaming data path against a bare DataLoader on the same JPEGs, and "
                           "torchvision.io against PIL decoding (--iters batches after --warmup, at --batch)")
    perf.add_argument("--images", type=int, default=512,
                      help="with --stream: synthetic JPEGs to write (256x320), or training images to sample "
                           "from --dataset")
    perf.add_argument("--workers", type=int,
                      help="with --stream: DataLoader workers (default: half the cores, "
                           "at most 8)")
    perf.add_argument("--image-size", type=int,
                      help="with --stream: the crop size (default: the pipeline's own)")


def _parse_packs(text: str) -> tuple[int, ...]:
    """'1,2,4' -> (1, 2, 4): numbers of trials packed at once (an argparse `type`)."""
    try:
        packs = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"malformed '{text}': expected integers such as 1,2,4,8") from None
    if any(p < 1 for p in packs):
        raise argparse.ArgumentTypeError(f"malformed '{text}': each number of packed trials must be at least 1")
    return packs


def _check(args: argparse.Namespace) -> None:
    """Refuse (UsageError) a name no registry knows, an unavailable device, bad speed settings or a --json-out
    folder that does not exist, before any mode starts timing."""
    from bench.grid.presets import PRESETS, base_method
    from bench.nn.backbones import BACKBONES
    from bench.nn.speed import validate_speed
    from methods import METHODS
    from noisytail_datasets import DATASETS, NOISE_MODELS

    for flag, value, least in (("--batch", args.batch, 1), ("--iters", args.iters, 1), ("--warmup", args.warmup, 0),
                               ("--warmup-epochs", args.warmup_epochs, 0), ("--epochs", args.epochs, 1),
                               ("--images", args.images, 1), ("--workers", args.workers, 0),
                               ("--image-size", args.image_size, 1)):
        if value is not None and value < least:
            raise UsageError(f"{flag} must be at least {least}, got {value}")
    validate_speed(speed_of(args))
    require_device(args.device)
    for name in args.methods or ():
        base_method(name) if args.launcher else METHODS.get(name)
    if args.method is not None:
        METHODS.get(args.method)
    if args.backbone is not None:
        BACKBONES.get(args.backbone)
    if args.dataset is not None:
        DATASETS.get(args.dataset)
    NOISE_MODELS.get(args.noise)
    if args.launcher:
        PRESETS.get(args.preset)
    if args.json_out is not None:
        _check_json_out(Path(args.json_out))


def _check_json_out(path: Path) -> None:
    """--json-out is written at the end (its missing folders created): refuse now a path under a file, an
    existing folder in its place, or a first existing folder that is not writable."""
    path = path.resolve()
    if path.is_dir():
        raise UsageError(f"--json-out {path} is a folder; give a file name such as {path / 'perf.json'}")
    existing = next(p for p in path.parents if p.exists())
    if not existing.is_dir():
        raise UsageError(f"--json-out {path}: {existing} is a file, not a folder; write elsewhere")
    if not os.access(existing, os.W_OK):
        raise UsageError(f"--json-out {path}: folder {existing} is not writable; write elsewhere")


def run(args: argparse.Namespace) -> int:
    _check(args)
    if args.stream:
        return _stream(args)
    if args.launcher:
        return _launch(args)
    if args.throughput:
        return _throughput(args)
    if args.epoch:
        return _epoch(args)
    from bench.perf.step import format_table, run_perf

    rows = run_perf(backbone=args.backbone or "resnet32", batch=args.batch, device=args.device,
                    methods=args.methods, iters=args.iters, warmup=args.warmup,
                    meta_grads=("jvp", "unrolled") if args.meta_grad == "both" else (args.meta_grad,))
    print(json.dumps(rows) if args.json else format_table(rows))
    return 0


def _launch(args: argparse.Namespace) -> int:
    from bench.perf import launch

    chosen = launch.LAUNCHERS if args.launcher == "both" else (args.launcher,)
    result = launch.run_launch_perf(preset=args.preset, launchers=chosen, methods=args.methods, device=args.device)
    print(json.dumps(result) if args.json else launch.format_launch_perf(result))
    return 0


def _epoch(args: argparse.Namespace) -> int:
    from bench.perf.epoch import format_epoch_perf, run_epoch_perf

    result = run_epoch_perf(
        method=args.method, dataset=args.dataset or "fashion-mnist", backbone=args.backbone,
        imbalance=args.imbalance, noise=args.noise, noise_rate=args.noise_rate, warmup_epochs=args.warmup_epochs,
        device=args.device, data_root=args.data_root,
    )
    print(json.dumps(result) if args.json else format_epoch_perf(result))
    return 0


def _throughput(args: argparse.Namespace) -> int:
    from bench.perf.throughput import format_device_perf, run_device_perf

    result = run_device_perf(args.methods, backbone=args.backbone or "resnet32", batch=args.batch,
                             device=args.device, epochs=args.epochs, packs=args.packs, speed=speed_of(args),
                             imbalance=args.imbalance)
    return _report(args, result, format_device_perf)


def _stream(args: argparse.Namespace) -> int:
    from bench.perf.stream import format_stream_perf, run_stream_perf

    others = [flag for flag, on in (("--epoch", args.epoch), ("--throughput", args.throughput),
                                    ("--launcher", args.launcher)) if on]
    if others:
        raise UsageError(f"--stream cannot be combined with {', '.join(others)}: run one perf mode at a time")
    result = run_stream_perf(images=args.images, batch=args.batch, iters=args.iters, warmup=args.warmup,
                             workers=args.workers, device=args.device, image_size=args.image_size,
                             dataset=args.dataset, data_root=args.data_root)
    return _report(args, result, format_stream_perf)


def _report(args: argparse.Namespace, result: dict[str, Any], text: Callable[[dict[str, Any]], str]) -> int:
    """Print `result` (JSON with --json, else `text`), with this command, also to --json-out."""
    result["command"] = "python -m bench " + " ".join(sys.argv[1:])
    if args.json_out:
        from bench.train.checkpoint import atomic_write_json

        atomic_write_json(Path(args.json_out), result)
    print(json.dumps(result) if args.json else text(result))
    return 0
