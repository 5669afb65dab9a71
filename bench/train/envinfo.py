"""Environment facts recorded with every run (never hashed into run ids)."""
from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """HEAD of the checkout this code runs from, with '+dirty' for uncommitted changes.

    Outside a git checkout (a Ray job's uploaded working dir has no .git, nor has a container
    image) it is $BENCH_GIT_COMMIT, or '' when that is unset.
    """
    fallback = os.environ.get("BENCH_GIT_COMMIT", "")
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return fallback
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=10,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return fallback


def environment(device: torch.device) -> dict[str, str | int]:
    """Library versions, device, thread count and, under Ray, the node that ran the code."""
    import torchvision

    env: dict[str, str | int] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count() or 0,
        "hostname": platform.node(),
    }
    env.update(ray_facts())
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def ray_facts() -> dict[str, str]:
    """Ray's version when installed, and the id of the Ray node running this process when it is
    a Ray worker or driver (which node ran a trial; not part of any run id)."""
    try:
        import ray
    except ImportError:
        return {}
    facts = {"ray": ray.__version__}
    if ray.is_initialized():
        facts["ray_node_id"] = ray.get_runtime_context().get_node_id()
    return facts


def resolve_device(name: str | None) -> torch.device:
    """'auto' (or None) picks CUDA when available."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
