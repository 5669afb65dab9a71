"""`bench data describe`: sizes, class counts and the realised noise of one data protocol."""
from __future__ import annotations

import argparse
import json

from bench.cli.args import add_protocol_args, data_spec, non_empty, seed_int


def add_to(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="inspect the data protocols")
    data_sub = data.add_subparsers(dest="what", required=True, parser_class=type(data))
    desc = data_sub.add_parser("describe", help="sizes, class counts and realised noise of a protocol")
    add_protocol_args(desc)
    desc.add_argument("--data-seed", type=seed_int, default=0)
    desc.add_argument("--json", action="store_true")
    desc.add_argument("--data-root", type=non_empty)
    desc.add_argument("--download", action="store_true")
    desc.set_defaults(handler=describe)


def describe(args: argparse.Namespace) -> int:
    from noisytail_datasets import build_data
    from noisytail_datasets import describe as describe_bundle

    spec = data_spec(args, args.data_seed)
    spec.validate()
    info = describe_bundle(build_data(spec, device="cpu", data_root=args.data_root, download=args.download))
    if args.json:
        print(json.dumps(info))
        return 0
    for key, value in info.items():
        if key == "transition_matrix":
            print("transition_matrix (row: clean class, column: noisy label):")
            for row in value:
                print("  " + " ".join(f"{v:.3f}" for v in row))
        elif key == "noise_rate_realized":
            print(f"{key}: {value:.4f}")
        else:
            print(f"{key}: {value}")
    return 0
