"""Shared pieces of the command line: the one-line-error parser, argument groups used by several
subcommands, and parsers of the values they take. Heavy libraries (torch, pandas) are imported
only by the commands that run, so that help and argument errors come back at once."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from bench.core.errors import UsageError

if TYPE_CHECKING:
    from bench.nn.speed import SpeedSpec
    from noisytail_datasets import DataSpec


class Parser(argparse.ArgumentParser):
    """argparse, but errors are one line: 'bench: error: …' and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"bench: error: {message} (see '{self.prog} --help')\n")


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(f"malformed --seeds '{text}': expected comma-separated integers such as 0,1,2") from None
    if any(s < 0 for s in seeds):
        raise UsageError(f"malformed --seeds '{text}': seeds must be non-negative integers")
    return seeds


def parse_methods(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def parse_hparams(pairs: list[str]) -> dict[str, Any]:
    """['q_start=0.4', 'name=x'] -> {'q_start': 0.4, 'name': 'x'} (values parsed as JSON when they can be)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"malformed --hp '{pair}': expected KEY=VALUE, e.g. --hp q_start=0.4")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def absolute(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


def add_speed_args(p: argparse.ArgumentParser) -> None:
    speed = p.add_argument_group("speed (recorded in each run's config; see README 'GPU fast path')")
    speed.add_argument("--amp", default="auto", help="auto (bf16 autocast of plain steps on CUDA), bf16 or off")
    speed.add_argument("--channels-last", default="auto", help="auto (on CUDA), on or off")
    speed.add_argument("--compile", action="store_true", help="torch.compile the backbone (eager fallback)")
    speed.add_argument("--deterministic", action="store_true",
                       help="every speed flag off, deterministic kernels, no cuDNN autotuning")


def speed_of(args: argparse.Namespace) -> SpeedSpec:
    from bench.nn.speed import SpeedSpec

    return SpeedSpec(amp=args.amp, channels_last=args.channels_last, compile=args.compile,
                     deterministic=args.deterministic)


def add_exec_args(p: argparse.ArgumentParser) -> None:
    """Where results go, the speed settings, the device and the data."""
    p.add_argument("--out", help="results folder (default: results/<preset> or results/one)")
    add_speed_args(p)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--data-root", help="folder with the dataset files (else $BENCH_DATA, system paths)")
    p.add_argument("--download", action="store_true", help="download missing datasets with torchvision")
    p.add_argument("--data-workers", type=int, metavar="N",
                   help="processes decoding streamed images (datasets of image files; default: half the cores, "
                        "at most 8; 0: in the training process)")


#: the weights a bare `--pretrained` names (== bench.nn.backbones.DEFAULT_PRETRAINED; kept here so that
#: parsing needs no torch)
DEFAULT_PRETRAINED = "imagenet1k_v1"


def add_pretrained_arg(p: argparse.ArgumentParser) -> None:
    """`--pretrained [WEIGHTS]`: start the backbone from torchvision's ImageNet weights."""
    p.add_argument("--pretrained", nargs="?", const=DEFAULT_PRETRAINED, metavar="WEIGHTS",
                   help=f"start from torchvision's ImageNet weights (resnet18, resnet50; default {DEFAULT_PRETRAINED}, "
                        "resnet50 also imagenet1k_v2), read from $TORCH_HOME/hub/checkpoints or downloaded there")


def add_protocol_args(p: argparse.ArgumentParser) -> None:
    """The data protocol of one run."""
    p.add_argument("--dataset", required=True)
    p.add_argument("--imbalance", type=float, default=1.0, help="rho = n_max / n_min (1: balanced)")
    p.add_argument("--noise", default="none", help="see `bench ls noise`")
    p.add_argument("--noise-rate", type=float, default=0.0)
    p.add_argument("--order", default="lt-noise", help="lt-noise or meta-noise-lt")
    p.add_argument("--meta-per-class", type=int,
                   help="clean meta images per class (default 10; 0 for datasets without clean labels)")
    p.add_argument("--noise-sampling", default="independent",
                   help="independent (each label redrawn with prob. r) or exact (DivideMix: int(r*N) relabelled)")
    p.add_argument("--pad-mode", default="constant", help="padding before the random crop: constant (zeros) or reflect")
    p.add_argument("--normalisation", default="dataset",
                   help="mean/std: dataset (its own), mwnet (MW-Net/GDW) or mmcls (Dynamic Loss; both CIFAR only)")
    p.add_argument("--image-size", type=int, default=0, metavar="PX",
                   help="crop size of a streamed dataset (0: its own, e.g. 224); the resize before it scales along")


def _meta_per_class(args: argparse.Namespace) -> int:
    """`--meta-per-class`, by default 10, or 0 on a dataset whose clean labels were never released."""
    if args.meta_per_class is not None:
        return args.meta_per_class
    from noisytail_datasets import DATASETS

    return 10 if args.dataset not in DATASETS or DATASETS.get(args.dataset).clean_labels_known else 0


def data_spec(args: argparse.Namespace, data_seed: int) -> DataSpec:
    from noisytail_datasets import DataSpec

    return DataSpec(dataset=args.dataset, imbalance=args.imbalance, noise=args.noise, noise_rate=args.noise_rate,
                    order=args.order, meta_per_class=_meta_per_class(args), data_seed=data_seed,
                    pad_mode=args.pad_mode, normalisation=args.normalisation, noise_sampling=args.noise_sampling,
                    image_size=args.image_size)


def add_results_args(p: argparse.ArgumentParser) -> None:
    """The results folder an analysis command reads."""
    p.add_argument("--results", required=True, help="a results folder, e.g. results/quick")
    p.add_argument("--preset", help="only the runs of this preset (when a folder holds several)")
