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


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB.

    Linux: VmHWM of /proc/self/status, which belongs to the current program image. (ru_maxrss
    would also count the parent's size at fork, since Linux carries it across exec.)
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def peak_memory_mb(device: torch.device) -> float:
    """CUDA max allocated on GPU; the process's peak resident set size on CPU.

    The CPU figure is a process-lifetime peak: runs executed one after another in one process
    (the local launcher, reused Ray workers) report the largest footprint so far, not their own.
    """
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return peak_rss_mb()
