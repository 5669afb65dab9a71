"""Batched train-time augmentation and normalisation on the tensors' own device.

`BatchTransform` replaces a per-sample torchvision pipeline (pad -> random crop -> random
horizontal flip -> to-float -> normalise) with one gather over the whole uint8 batch: padding,
cropping and flipping are folded into source-pixel indices, so no padded copy, no PIL and no
Python loop over samples is needed.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

PAD_MODES = ("constant", "reflect")


@dataclass(frozen=True)
class AugmentSpec:
    """Train-time augmentation: random crop after `pad` pixels of padding, optional h-flip.

    pad_mode "constant" pads with zeros (black, as torchvision's RandomCrop(padding=pad));
    "reflect" mirrors the image without repeating the edge pixel.
    """

    pad: int = 0
    flip: bool = False
    pad_mode: str = "constant"

    def __post_init__(self) -> None:
        if self.pad < 0:
            raise ValueError(f"pad must be >= 0, got {self.pad}")
        if self.pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {self.pad_mode!r}")


def _channel_tensor(values: tuple[float, ...], device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, device=device).view(1, -1, 1, 1)


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Map padded coordinates in [-size+1, 2*size-2] back into [0, size) by mirroring."""
    index = index.abs()
    return torch.where(index > size - 1, 2 * (size - 1) - index, index)


class BatchTransform:
    """uint8 N×C×H×W batch -> normalised float32 batch; random crop + flip when train=True."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], augment: AugmentSpec) -> None:
        if len(mean) != len(std):
            raise ValueError("mean and std must have one entry per channel")
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.augment = augment
        self._stats: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        if x.device not in self._stats:  # one host->device copy per device, not per batch
            self._stats[x.device] = (_channel_tensor(self.mean, x.device), _channel_tensor(self.std, x.device))
        mean, std = self._stats[x.device]
        return (x.to(torch.float32) / 255.0 - mean) / std

    def _randint(self, high: int, n: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
        draw_device = generator.device if generator is not None else device
        return torch.randint(0, high, (n,), generator=generator, device=draw_device).to(device)

    def _augment(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        n, c, h, w = x.shape
        pad, dev = self.augment.pad, x.device
        if pad and self.augment.pad_mode == "reflect" and pad >= min(h, w):
            raise ValueError(f"reflect padding {pad} needs images larger than {pad} pixels")
        rows = torch.arange(h, device=dev).expand(n, h)
        cols = torch.arange(w, device=dev).expand(n, w)
        if pad:  # the crop offsets into the (virtually) padded image, in [0, 2*pad]
            rows = rows + self._randint(2 * pad + 1, n, dev, generator)[:, None] - pad
            cols = cols + self._randint(2 * pad + 1, n, dev, generator)[:, None] - pad
        if self.augment.flip:  # flipping the crop = reading its columns right to left
            flipped = self._randint(2, n, dev, generator).bool()[:, None]
            cols = torch.where(flipped, cols.flip(1), cols)
        if self.augment.pad_mode == "reflect":
            rows, cols = _reflect(rows, h), _reflect(cols, w)
            inside = None
        else:
            inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
            rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
        source = (rows[:, :, None] * w + cols[:, None, :]).reshape(n, 1, h * w).expand(n, c, h * w)
        out = x.reshape(n, c, h * w).gather(2, source).view(n, c, h, w)
        if inside is not None:
            out = out * inside[:, None].to(out.dtype)
        return out

    def __call__(self, x_uint8: torch.Tensor, train: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        """Normalised float32 copy of the batch; augmented first when `train` is True."""
        if x_uint8.dim() != 4:
            raise ValueError(f"expected an N×C×H×W batch, got shape {tuple(x_uint8.shape)}")
        x = x_uint8
        if train and (self.augment.pad or self.augment.flip) and x.shape[0]:
            x = self._augment(x, generator)
        return self._normalise(x)
