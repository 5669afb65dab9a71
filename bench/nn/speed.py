"""GPU fast paths: which speed settings (`SpeedSpec`) are active on a device, and their helpers.

On CUDA the defaults give bf16 autocast for the plain forward/backward steps and channels-last
memory for image batches; per-sample losses, weights and GMM inputs stay fp32 (the methods cast
logits to float before any loss). Meta (look-ahead) steps always run eager in fp32.
`deterministic` turns every flag off and asks PyTorch for deterministic kernels. On CPU only
`compile` (when asked for) and `deterministic` apply.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
from torch import nn

from bench.core.errors import UsageError


@dataclass(frozen=True)
class SpeedSpec:
    """Speed settings that may change numerics, so they are part of the run (and its id when not
    at their defaults). What is active depends on the device: see `resolve_speed`.

    - `amp`: "auto" (bf16 autocast of the plain forward/backward steps on CUDA; off on CPU),
      "bf16" (the same, explicitly) or "off".
    - `channels_last`: "auto" (on for 4-D inputs on CUDA), "on" or "off".
    - `compile`: `torch.compile` the backbone (eager fallback if compiling fails).
    - `deterministic`: every flag off, deterministic algorithms, no cuDNN autotuning.
    """

    amp: str = "auto"
    channels_last: str = "auto"
    compile: bool = False
    deterministic: bool = False


AMP_CHOICES = ("auto", "bf16", "off")
CHANNELS_LAST_CHOICES = ("auto", "on", "off")


def validate_speed(spec: SpeedSpec) -> None:
    """A UsageError naming the bad value and the choices."""
    if spec.amp not in AMP_CHOICES:
        raise UsageError(f"unknown --amp '{spec.amp}'; choose one of: {', '.join(AMP_CHOICES)}")
    if spec.channels_last not in CHANNELS_LAST_CHOICES:
        raise UsageError(f"unknown --channels-last '{spec.channels_last}'; choose one of: "
                         f"{', '.join(CHANNELS_LAST_CHOICES)}")


@dataclass
class ActiveSpeed:
    """The speed settings in force for one run (recorded as the run record's `speed`)."""

    amp: bool = False
    channels_last: bool = False
    device_type: str = "cuda"  # where autocast applies
    compile: str = "off"  # off | on | "failed: <reason>" (then eager)
    deterministic: bool = False
    cudnn_benchmark: bool = False

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast for a plain forward pass when `amp` is active, else a no-op."""
        return torch.autocast(self.device_type, dtype=torch.bfloat16) if self.amp else contextlib.nullcontext()

    def memory_format(self, x: torch.Tensor) -> torch.Tensor:
        """An image batch in channels-last layout when active (other tensors unchanged)."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def resolve_speed(spec: SpeedSpec, device: torch.device, image_input: bool = True) -> ActiveSpeed:
    """What `spec` turns on for `device` (image_input: the backbone takes 4-D image batches)."""
    validate_speed(spec)
    cuda = device.type == "cuda"
    if spec.deterministic:
        return ActiveSpeed(deterministic=True, device_type=device.type)
    return ActiveSpeed(
        device_type=device.type,
        amp=cuda and spec.amp in ("auto", "bf16"),
        channels_last=cuda and image_input and spec.channels_last in ("auto", "on"),
        compile="on" if spec.compile else "off",
        cudnn_benchmark=cuda,
    )


def apply_global(active: ActiveSpeed) -> None:
    """Process-wide switches: deterministic kernels, or cuDNN autotuning."""
    if active.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by deterministic cuBLAS
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = active.cudnn_benchmark


def prepare_model(model: nn.Module, active: ActiveSpeed) -> nn.Module:
    """Channels-last weights and, when asked, an in-place `torch.compile` (the keys of
    `state_dict` are unchanged). Compiling happens on the first call; if it fails, the engine
    starts the run again eagerly (`bench.train.engine.run_trial`)."""
    if active.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if active.compile == "on":
        model.compile()
    return model
