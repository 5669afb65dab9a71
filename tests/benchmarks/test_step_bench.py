"""pytest-benchmark timings of one training step per method, beside the bare PyTorch floor.

Run separately from the test suite:
    python -m pytest tests/benchmarks --benchmark-only -o addopts="" [--benchmark-json out.json]
Backbone and batch come from $BENCH_PERF_BACKBONE (default resnet32) and $BENCH_PERF_BATCH (128).
Compare methods by the ratio of their means to `bare` and `ce` in the same session.
"""
import os

import pytest
import torch

from bench.perf.step import META_GRAD_ROUTES, candidate_names, make_step
from methods import METHODS

BACKBONE = os.environ.get("BENCH_PERF_BACKBONE", "resnet32")
BATCH = int(os.environ.get("BENCH_PERF_BATCH", "128"))


CANDIDATES = ["bare", *[c for name in METHODS.names() for c in candidate_names(name, META_GRAD_ROUTES)]]


@pytest.mark.parametrize("candidate", CANDIDATES)
def test_train_step(benchmark, candidate):
    step = make_step(candidate, BACKBONE, BATCH, torch.device("cpu"))
    benchmark.group = f"{BACKBONE} batch {BATCH}"
    benchmark.pedantic(step, rounds=8, iterations=1, warmup_rounds=3)
