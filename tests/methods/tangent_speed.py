"""Timing of methods/tangent.py against the dual-tensor recompute (not collected by pytest).

    python tests/methods/tangent_speed.py [--rounds 15] [--batch 100] [--backbone resnet32]

Interleaved rounds on one batch, torch.set_num_threads(2): (a) plain model(x) with autograd, (b)
ReusableForward(x), (c) methods.bilevel.logit_tangent (dual tensors, recomputes the primal forward),
(d) ReusableForward.tangent (all parameters), (e) ReusableForward.tangent (last stage + fc). Medians in ms.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench.nn.backbones import build_backbone
from methods.bilevel import logit_tangent
from methods.tangent import ReusableForward


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--backbone", default="resnet32")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_backbone(args.backbone, 3, 10, 32).train()
    x = torch.randn(args.batch, 3, 32, 32)
    params = dict(model.named_parameters())
    tangents = {n: torch.randn_like(p) for n, p in params.items()}
    last = {n: t for n, t in tangents.items() if n.startswith(("layer3", "layer4", "block3", "fc"))}
    rf = ReusableForward(model)

    def plain() -> None:
        model(x).sum()

    def reusable() -> None:
        rf(x).sum()

    def dual() -> None:
        logit_tangent(model, params, x, tangents)

    def tangent() -> None:
        rf.tangent(tangents)

    def tangent_last() -> None:
        rf.tangent(last)

    cases = {"(a) model(x)": plain, "(b) ReusableForward(x)": reusable, "(c) logit_tangent (dual)": dual,
             "(d) rf.tangent (all)": tangent, f"(e) rf.tangent ({len(last)} last-stage params)": tangent_last}
    times: dict[str, list[float]] = {k: [] for k in cases}
    rf(x)
    for fn in cases.values():  # warm-up
        fn()
    for _ in range(args.rounds):
        for name, fn in cases.items():
            if name.startswith("(d)") or name.startswith("(e)"):
                rf(x)  # a fresh forward to tangent from (not timed)
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["(a) model(x)"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<40} {1e3 * med:8.1f} ms  ({med / base:.2f}x plain forward)")


if __name__ == "__main__":
    main()
