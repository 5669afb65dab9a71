"""`bench perf`: training steps side by side (default), one method's epoch against its cost model
(`--epoch`), throughput through the engine (`--throughput`), the launchers' overhead
(`--launcher`), and the streaming data path against a bare DataLoader (`--stream`)."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.cli.args import add_speed_args, parse_methods, speed_of
from bench.core.errors import UsageError


def add_to(sub: argparse._SubParsersAction) -> None:
    perf = sub.add_parser("perf", help="time each method's training step side by side")
    perf.add_argument("--backbone", help="default: resnet32 (with --epoch: the dataset's recipe backbone)")
    perf.add_argument("--batch", type=int, default=128)
    perf.add_argument("--device", default="cpu")
    perf.add_argument("--methods", type=parse_methods)
    perf.add_argument("--iters", type=int, default=20, help="timed iterations per method")
    perf.add_argument("--warmup", type=int, default=3)
    perf.add_argument("--json", action="store_true")
    _add_epoch_args(perf)
    _add_throughput_args(perf)
    _add_stream_args(perf)
    perf.add_argument("--launcher", choices=("ray", "local", "both"),
                      help="time `run grid --preset P` end to end under this launcher (both: Ray's overhead per trial)")
    perf.add_argument("--preset", default="quick", help="with --launcher: the grid to run (--methods narrows it)")
    add_speed_args(perf)
    perf.set_defaults(handler=run)


def _add_epoch_args(perf: argparse.ArgumentParser) -> None:
    perf.add_argument("--epoch", action="store_true",
                      help="time one post-warm-up epoch of a method with its own epoch structure on real data "
                           "against a baseline epoch and the method's cost model")
    perf.add_argument("--method", help="with --epoch: a method that declares an epoch cost model "
                                       "(default: the first in the listing that does)")
    perf.add_argument("--dataset", help="with --epoch (default fashion-mnist); with --stream: a streamed dataset "
                                         "whose training images to time (default: a synthetic fixture)")
    perf.add_argument("--noise", default="sym", help="with --epoch")
    perf.add_argument("--noise-rate", type=float, default=0.4, help="with --epoch")
    perf.add_argument("--imbalance", type=float, default=1.0, help="with --epoch")
    perf.add_argument("--warmup-epochs", type=int, default=1, help="with --epoch: warm-up epochs before the timed one")
    perf.add_argument("--data-root", help="with --epoch or --stream")


def _add_throughput_args(perf: argparse.ArgumentParser) -> None:
    perf.add_argument("--throughput", action="store_true",
                      help="epochs through the engine on random-cifar (solo, per method) and packed baseline trials")
    perf.add_argument("--epochs", type=int, default=3, help="with --throughput: epochs per run (the last is timed)")
    perf.add_argument("--packs", default="1,2,4,8", help="with --throughput: numbers of trials packed at once")
    perf.add_argument("--json-out", help="with --throughput or --stream: also write the result (and this command) "
                                         "as JSON here, e.g. results/perf/h100.json")


def _add_stream_args(perf: argparse.ArgumentParser) -> None:
    perf.add_argument("--stream", action="store_true",
                      help="images/s of the streaming data path against a bare DataLoader on the same JPEGs, and "
                           "torchvision.io against PIL decoding (--iters batches after --warmup, at --batch)")
    perf.add_argument("--images", type=int, default=512,
                      help="with --stream: synthetic JPEGs to write (256x320), or training images to sample "
                           "from --dataset")
    perf.add_argument("--workers", type=int, help="with --stream: DataLoader workers (default: half the cores, "
                                                  "at most 8)")
    perf.add_argument("--image-size", type=int, help="with --stream: the crop size (default: the pipeline's own)")


def run(args: argparse.Namespace) -> int:
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
                    methods=args.methods, iters=args.iters, warmup=args.warmup)
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

    try:
        packs = tuple(int(p) for p in args.packs.split(","))
    except ValueError:
        raise UsageError(f"malformed --packs '{args.packs}': expected integers such as 1,2,4,8") from None
    result = run_device_perf(args.methods, backbone=args.backbone or "resnet32", batch=args.batch,
                             device=args.device, epochs=args.epochs, packs=packs, speed=speed_of(args),
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
