"""Images that stay on disk (`ImageFiles`) and the per-image pipeline that streams them (`StreamTransforms`).

Datasets of full-size photographs (Clothing1M, WebVision, ImageNet-LT, Places-LT) cannot be held
as one uint8 array: their `BaseData` holds an `ImageFiles` (one path per image, in the dataset's
order) instead, and the training loop streams them (`noisytail_datasets.streaming`): decoding and
augmentation run in `DataLoader` workers, the network sees batches of `StreamTransforms.size` pixels.
Indexing an `ImageFiles` with a NumPy index or slice gives the `ImageFiles` of those images, so the
long-tail cut, meta split and noise stages treat both kinds of image store alike.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench.core.errors import UsageError

#: how a streamed training image is cropped: "random-resized" (torchvision RandomResizedCrop, default
#: scale (0.08, 1)), "random" (resize the short side to `resize`, then a random `size` crop: Clothing1M)
TRAIN_CROPS = ("random-resized", "random")


@dataclass(frozen=True, eq=False)
class ImageFiles:
    """The image files of one split, decoded on demand; `paths` is a 1-D array of str."""

    paths: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "paths", np.asarray(self.paths, dtype=object).reshape(-1))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: Any) -> "ImageFiles":
        """The files at a NumPy index, boolean mask or slice (always an `ImageFiles`)."""
        return ImageFiles(self.paths[np.asarray(index) if not isinstance(index, slice) else index])

    def copy(self) -> "ImageFiles":
        return ImageFiles(self.paths.copy())

    def decode(self, i: int) -> torch.Tensor:
        """Image `i` as a uint8 3×H×W RGB tensor (JPEG or PNG by content; grey images are expanded);
        a UsageError names the file when it is missing or unreadable."""
        from torchvision.io import ImageReadMode, decode_image, read_file

        path = str(self.paths[i])
        try:
            with warnings.catch_warnings():  # torchvision 0.29 deprecates its codecs in favour of TorchCodec
                warnings.filterwarnings("ignore", "The image decoding and encoding", DeprecationWarning)
                return decode_image(read_file(path), mode=ImageReadMode.RGB)
        except (RuntimeError, OSError) as err:
            raise UsageError(f"cannot read image '{path}' ({err}); restore it from the dataset's release") from err


@dataclass(frozen=True)
class StreamTransforms:
    """The per-image pipeline of a streamed dataset (ImageNet style).

    train: a `train_crop` crop to `size` pixels, then a horizontal flip (if `flip`) and colour jitter
    (brightness, contrast, saturation, hue; if given). eval: resize the short side to `resize`, then
    centre-crop `size`. Normalisation happens on the device, after the uint8 batch is copied there.
    """

    size: int = 224
    resize: int = 256
    train_crop: str = "random-resized"
    flip: bool = True
    color_jitter: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.train_crop not in TRAIN_CROPS:
            raise ValueError(f"train_crop must be one of {TRAIN_CROPS}, got {self.train_crop!r}")
        if not 0 < self.size <= self.resize:
            raise ValueError(f"need 0 < size <= resize, got size {self.size}, resize {self.resize}")

    def at_size(self, size: int) -> "StreamTransforms":
        """The same pipeline at crop `size`, with the resize scaled in proportion (256/224 → e.g. 37/32)."""
        if size == self.size:
            return self
        return StreamTransforms(size, max(size, round(size * self.resize / self.size)), self.train_crop, self.flip,
                                self.color_jitter)
