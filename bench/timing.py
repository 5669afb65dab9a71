"""Wall-clock and memory measurement helpers."""
from __future__ import annotations

import resource
import statistics
import sys
import time

import torch


def synchronize(device: torch.device) -> None:
    """Wait for queued device work so a timestamp means what it says."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def now(device: torch.device) -> float:
    synchronize(device)
    return time.perf_counter()


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """CUDA max allocated on GPU; the process's peak resident set size on CPU.

    The CPU figure is a process-lifetime peak: runs executed one after another in one process
    (the local launcher) report the largest footprint so far, not their own.
    """
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
