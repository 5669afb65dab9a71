"""Timing of methods/tangent.py against the dual-tensor recompute (not collected by pytest).

    python tests/benchmarks/tangent_speed.py [--rounds 15] [--batch 100] [--backbone resnet32]

Interleaved rounds on one batch, torch.set_num_threads(2): (a) plain model(x) with autograd, (b)
ReusableForward(x), (c) methods.bilevel.logit_tangent (dual tensors, recomputes the primal forward),
(d) ReusableForward.tangent (all parameters), (e) ReusableForward.tangent (last stage + fc). Wall-clock medians
and minima and the median process CPU time (less sensitive to other load on the machine than wall time), in ms
and as multiples of (a).
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
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    rf(x)
    for fn in cases.values():  # warm-up
        fn()
    for _ in range(args.rounds):
        for name, fn in cases.items():
            if name.startswith("(d)") or name.startswith("(e)"):
                rf(x)  # a fresh forward to tangent from (not timed)
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    print(f"{'':<44}{'wall median':>20}{'wall min':>20}{'CPU-time median':>22}")
    ref = {k: f(v["(a) model(x)"]) for k, v, f in (("med", times, statistics.median), ("min", times, min),
                                                     ("cpu", cpu, statistics.median))}
    for name in cases:
        cols = [(statistics.median(times[name]), ref["med"]), (min(times[name]), ref["min"]),
                (statistics.median(cpu[name]), ref["cpu"])]
        print(f"{name:<44}" + "".join(f"{1e3 * v:10.1f} ms ({v / r:.2f}x)" for v, r in cols))


if __name__ == "__main__":
    main()
