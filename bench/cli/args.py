"""Shared pieces of the command line: the one-line-error parser, argument groups used by several
subcommands, and parsers of the values they take. Heavy libraries (torch, pandas) are imported
only by the commands that run, so that help and argument errors come back at once."""
from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
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


#: the largest seed: numpy and torch take seeds in [0, 2**32 - 1]
MAX_SEED = 2**32 - 1


def _number(text: str, kind: type) -> float:
    try:
        value = kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"'{text}' is not {what}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return value


def _bounded(kind: type, low: float | None = None, high: float | None = None, low_open: bool = False,
             high_open: bool = False, hint: str = "") -> Callable[[str], Any]:
    """An argparse `type`: a finite `kind` (int or float) within the bounds; otherwise argparse's one-line
    error 'argument --flag: must be …, got …'."""
    low_text = "" if low is None else f"{'>' if low_open else '>='} {low}"
    high_text = "" if high is None else f"{'<' if high_open else '<='} {high}"
    rule = " and ".join(part for part in (low_text, high_text) if part)
    noun = "an integer" if kind is int else "a number"

    def parse(text: str) -> Any:
        value = _number(text, kind)
        if ((low is not None and (value <= low if low_open else value < low))
                or (high is not None and (value >= high if high_open else value > high))):
            raise argparse.ArgumentTypeError(f"must be {noun} {rule}{hint}, got {text}")
        return value

    parse.__name__ = noun.split()[-1]  # argparse names the type in "invalid <name> value"
    return parse


positive_int = _bounded(int, low=1)
non_negative_int = _bounded(int, low=0)
seed_int = _bounded(int, low=0, high=MAX_SEED)
positive_float = _bounded(float, low=0, low_open=True)
non_negative_float = _bounded(float, low=0)
imbalance_float = _bounded(float, low=1, hint=" (rho = n_max / n_min; 1: balanced)")
noise_rate_float = _bounded(float, low=0, high=1, high_open=True, hint=" (the noise rate r; 0: clean labels)")
val_fraction_float = _bounded(float, low=0, high=0.5, hint=" (share of each noisy class held out for validation)")
probability_float = _bounded(float, low=0, high=1, low_open=True, high_open=True)


def non_empty(text: str) -> str:
    """An argparse `type` for a path or name that may not be empty."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


DEVICE_KINDS = ("auto", "cpu", "cuda")


def device_name(text: str) -> str:
    """An argparse `type`: auto, cpu, cuda or cuda:N (whether the GPU is there is checked by `require_device`)."""
    kind, sep, index = text.partition(":")
    if kind not in DEVICE_KINDS or (sep and (kind != "cuda" or not index.isdigit())):
        raise argparse.ArgumentTypeError(f"unknown --device '{text}'; choose one of: auto, cpu, cuda, cuda:N")
    return text


def require_device(name: str) -> None:
    """A UsageError when `name` asks for a CUDA GPU that this machine does not have."""
    if not name.startswith("cuda"):
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(name.partition(":")[2] or 0)
    if index >= count:
        have = f"{count} CUDA GPU(s)" if count else "no CUDA GPU"
        raise UsageError(f"--device {name}: this machine has {have}; use --device cpu or auto")


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(f"malformed --seeds '{text}': expected comma-separated integers such as 0,1,2") from None
    if any(not 0 <= s <= MAX_SEED for s in seeds):
        raise UsageError(f"malformed --seeds '{text}': each seed must be an integer from 0 to {MAX_SEED}")
    return seeds


def parse_methods(text: str) -> list[str]:
    """'ce, dal' -> ['ce', 'dal'] (an argparse `type`: a list that names nothing is refused)."""
    methods = [m.strip() for m in text.split(",") if m.strip()]
    if not methods:
        raise argparse.ArgumentTypeError(f"'{text}' names no method; give comma-separated names such as ce,dal")
    return methods


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
    p.add_argument("--out", type=non_empty, help="results folder (default: results/<preset> or results/one)")
    add_speed_args(p)
    p.add_argument("--device", type=device_name, default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--data-root", type=non_empty, help="folder with the dataset files (else $BENCH_DATA, system paths)")
    p.add_argument("--download", action="store_true", help="download missing datasets with torchvision")
    p.add_argument("--data-workers", type=non_negative_int, metavar="N",
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
    p.add_argument("--dataset", type=non_empty, required=True)
    p.add_argument("--imbalance", type=imbalance_float, default=1.0, help="rho = n_max / n_min (1: balanced)")
    p.add_argument("--noise", default="none", help="see `bench ls noise`")
    p.add_argument("--noise-rate", type=noise_rate_float, default=0.0)
    p.add_argument("--order", default="lt-noise", help="lt-noise or meta-noise-lt")
    p.add_argument("--meta-per-class", type=non_negative_int,
                   help="clean meta images per class (default 10; 0 for datasets without clean labels)")
    p.add_argument("--noise-sampling", default="independent",
                   help="independent (each label redrawn with prob. r) or exact (DivideMix: int(r*N) relabelled)")
    p.add_argument("--pad-mode", default="constant", help="padding before the random crop: constant (zeros) or reflect")
    p.add_argument("--normalisation", default="dataset",
                   help="mean/std: dataset (its own), mwnet (MW-Net/GDW) or mmcls (Dynamic Loss; both CIFAR only)")
    p.add_argument("--image-size", type=non_negative_int, default=0, metavar="PX",
                   help="crop size of a streamed dataset (0: its own, e.g. 224); the resize before it scales along")
    p.add_argument("--val-fraction", type=val_fraction_float, default=0.0, metavar="F",
                   help="hold out this share of each noisy class as a validation split (noisy labels, never "
                        "trained on; default 0: none)")
    p.add_argument("--max-per-class", type=non_negative_int, default=0, metavar="N",
                   help="cap the head class at N images before the long-tail cut (a smaller training set with the "
                        "same profile; default 0: no cap)")


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
                    image_size=args.image_size, val_fraction=args.val_fraction,
                    max_per_class=args.max_per_class)


def add_results_args(p: argparse.ArgumentParser) -> None:
    """The results folder an analysis command reads."""
    p.add_argument("--results", type=non_empty, required=True, help="a results folder, e.g. results/quick")
    p.add_argument("--preset", type=non_empty, help="only the runs of this preset (when a folder holds several)")
